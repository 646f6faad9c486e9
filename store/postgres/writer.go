package postgres

import (
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// WriterIdleTimeout is how long PostgreSQL lets a writer's session sit in
// a transaction without a statement before it ends the session. Every
// write takes the version row first (see Apply), so a writer cut off by
// the network in the middle of a transaction would hold it, and every
// other write of the fleet would wait, until TCP gives up on the
// connection: hours. No write of Meridian's waits on its client for
// anywhere near this long.
const WriterIdleTimeout = 5 * time.Second

// ConfigureWriter sets up the connections of a process that writes to
// the store (a checker, meridianctl, the management API, dynamic
// updates): PostgreSQL ends a session left idle in a transaction after
// WriterIdleTimeout, which frees the version row it held. A setting the
// URL gives is kept.
func ConfigureWriter(cfg *pgx.ConnConfig) {
	if cfg.RuntimeParams == nil {
		cfg.RuntimeParams = map[string]string{}
	}
	if _, set := cfg.RuntimeParams["idle_in_transaction_session_timeout"]; !set {
		cfg.RuntimeParams["idle_in_transaction_session_timeout"] = strconv.FormatInt(WriterIdleTimeout.Milliseconds(), 10)
	}
}
