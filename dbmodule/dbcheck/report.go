package dbcheck

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Report is what Run found. Its JSON form is for scripts; WriteText writes
// it for people. Parts Run did not reach are nil.
type Report struct {
	Healthy bool `json:"healthy"`
	// Problem says, on one line, why the database is unhealthy.
	Problem string `json:"problem,omitempty"`
	// Warnings are what deserves a look but does not make it unhealthy.
	Warnings []string `json:"warnings,omitempty"`

	Target     *Target     `json:"target,omitempty"`
	Server     *Server     `json:"server,omitempty"`
	Timing     *Timing     `json:"timing,omitempty"`
	Headroom   *Headroom   `json:"headroom,omitempty"`
	Migrations *Migrations `json:"migrations,omitempty"`
	Settings   []Setting   `json:"settings,omitempty"`
}

// Target is where the pool connects, from its URL: never a password.
type Target struct {
	Variable string `json:"variable"` // DATABASE_URL, or DIRECT_URL when it is unset
	Host     string `json:"host"`
	Port     uint16 `json:"port"`
	Database string `json:"database"`
	User     string `json:"user"`
	Endpoint string `json:"endpoint"`          // host:port or unix socket, and how many more hosts the URL lists
	Address  string `json:"address,omitempty"` // the address connected to, once connected
	TLS      bool   `json:"tls"`
}

// Server is what the server says of itself.
type Server struct {
	Version    string `json:"version"`     // server_version, e.g. "15.8 (Debian 15.8-0+deb12u1)"
	VersionNum int    `json:"version_num"` // server_version_num, e.g. 150008
	InRecovery bool   `json:"in_recovery"` // a standby, read-only
	Database   string `json:"database"`    // current_database()
	User       string `json:"user"`        // current_user
}

// Timing is how long the connection took to open, and a ping to answer.
type Timing struct {
	ConnectMS   float64 `json:"connect_ms"`    // dial, TLS, login and session setup
	RoundTripMS float64 `json:"round_trip_ms"` // median of RoundTrips pings
	RoundTrips  int     `json:"round_trips"`
}

// Headroom compares the pool's size with the server's free connections.
type Headroom struct {
	MaxConnections int   `json:"max_connections"`
	Reserved       int   `json:"reserved"` // for superusers and reserved_connections roles
	InUse          int   `json:"in_use"`   // client connections but the check's own
	Free           int   `json:"free"`
	PoolMaxConns   int32 `json:"pool_max_conns"`
	// BehindPooler is set when the server listens on another port than the
	// URL names: a pooler or proxy is in between, so the pool's
	// connections are not the server's.
	BehindPooler bool `json:"behind_pooler"`
}

// Migrations compares this build's migrations with the database's.
type Migrations struct {
	Variable string   `json:"variable"` // the URL they are read over: DIRECT_URL, else DATABASE_URL
	Version  int64    `json:"version"`  // of the latest applied; 0 for none
	Latest   int64    `json:"latest"`   // of this build's newest
	Applied  int      `json:"applied"`
	Pending  []string `json:"pending"` // file names, in order
}

// WriteText writes r for people: a status line, then what was found, then
// the pool settings with their origins, then the warnings.
func (r Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	line := func(label, format string, args ...any) {
		fmt.Fprintf(tw, "%-12s"+format+"\n", append([]any{label}, args...)...)
	}
	if r.Healthy {
		line("status", "healthy")
	} else {
		line("status", "UNHEALTHY: %s", r.Problem)
	}
	if t := r.Target; t != nil {
		tls := "off"
		if t.TLS {
			tls = "on"
		}
		where := fmt.Sprintf("%s as %s, database %s (%s)", t.Endpoint, t.User, t.Database, t.Variable)
		if t.Address != "" {
			where += fmt.Sprintf("; connected to %s, TLS %s", t.Address, tls)
		}
		line("database", "%s", where)
	}
	if s := r.Server; s != nil {
		role := "primary"
		if s.InRecovery {
			role = "standby (in recovery, read-only)"
		}
		line("server", "PostgreSQL %s, %s", s.Version, role)
	}
	if t := r.Timing; t != nil {
		line("timing", "connect %.3f ms, round trip %.3f ms (median of %d pings)", t.ConnectMS, t.RoundTripMS, t.RoundTrips)
	}
	if h := r.Headroom; h != nil {
		msg := fmt.Sprintf("%d free of max_connections %d (%d reserved, %d in use); the pool opens up to %d", h.Free, h.MaxConnections, h.Reserved, h.InUse, h.PoolMaxConns)
		if h.BehindPooler {
			msg += "; behind a pooler, so the pool's connections are the pooler's"
		}
		line("headroom", "%s", msg)
	}
	if m := r.Migrations; m != nil {
		pending := "none pending"
		if len(m.Pending) > 0 {
			pending = fmt.Sprintf("%d pending: %s", len(m.Pending), strings.Join(m.Pending, ", "))
		}
		line("migrations", "schema version %d, this build's latest %d; %s (over %s)", m.Version, m.Latest, pending, m.Variable)
	}
	if len(r.Settings) > 0 {
		fmt.Fprintln(tw, "\npool settings (a URL parameter wins over its DB_* variable, which wins over the default)")
		for _, s := range r.Settings {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.Name, s.Value, s.Origin)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(tw, "\nwarnings")
		for _, w := range r.Warnings {
			fmt.Fprintf(tw, "  - %s\n", w)
		}
	}
	return tw.Flush()
}
