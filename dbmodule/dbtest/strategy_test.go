package dbtest

import "testing"

func TestCloneStrategy(t *testing.T) {
	for _, c := range []struct {
		version int
		fsync   bool
		bytes   int64
		want    string
	}{
		{130012, false, 8 << 20, ""}, // no STRATEGY before 15
		{140009, true, 1 << 30, ""},
		{150004, false, 8 << 20, "FILE_COPY"}, // fsync off: file copy at any size
		{150004, false, 1 << 30, "FILE_COPY"},
		{150004, true, 8 << 20, "WAL_LOG"}, // fsync on: WAL_LOG below the crossover
		{150004, true, 40<<20 - 1, "WAL_LOG"},
		{160001, true, 40 << 20, "FILE_COPY"},
	} {
		if got := cloneStrategy(c.version, c.fsync, c.bytes); got != c.want {
			t.Errorf("cloneStrategy(%d, fsync %v, %d bytes) = %q, want %q", c.version, c.fsync, c.bytes, got, c.want)
		}
	}
}
