package dbtest

// cloneStrategy returns the STRATEGY clause for cloning a template of
// templateBytes on a server of version serverVersion (server_version_num)
// whose fsync setting is fsync; "" to leave it out.
//
// PostgreSQL 15 added STRATEGY: WAL_LOG (the default) copies the template
// block by block through the WAL, a cost that grows with its size; FILE_COPY
// copies its files and takes two checkpoints, a fixed cost that is cheap
// when checkpoints need not wait for the disk. Before 15, FILE_COPY is the
// only way and the clause does not exist.
//
// Measured on 2026-12-01 (2 cores, PostgreSQL 15, templates of a small
// schema plus a filler table; 12 rounds per size alternating the two ways;
// median create time, ms):
//
//	template         fsync=off (/dev/shm)     fsync=on (ext4 disk, defaults)
//	                 WAL_LOG   FILE_COPY      WAL_LOG   FILE_COPY
//	  7.7 MB          11.7       8.6           17.0      41.0
//	 16.3 MB          17.9      14.2           33.3      56.4
//	 33.5 MB          32.7      21.7           65.1      71.5
//	 67.9 MB          76.4      39.0          115.9      85.2
//	136.6 MB         171.1      74.2          248.5     141.2
//	274.1 MB         365.5     134.1          579.0     304.4
//
// Two clones at a time on the fsync=off server kept the order (7.7 MB: 18.0
// vs 11.5 ms). So: with fsync off, as on the kit's own server, FILE_COPY at
// every size; with fsync on, WAL_LOG below the crossover, about 40 MB
// (interpolated between 33.5 and 67.9 MB; a second, noisier run on the disk
// put FILE_COPY ahead at 50.7 MB), FILE_COPY above it.
func cloneStrategy(serverVersion int, fsync bool, templateBytes int64) string {
	const crossover = 40 << 20
	switch {
	case serverVersion < 150000:
		return ""
	case !fsync || templateBytes >= crossover:
		return "FILE_COPY"
	default:
		return "WAL_LOG"
	}
}
