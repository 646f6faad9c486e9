package zones

// Snapshot is an immutable, query-ready compilation of zones. It is built
// off the query path by Build and never modified afterwards, so any number
// of goroutines may read it without locks.
type Snapshot struct {
	// Version orders snapshots; a server never replaces a snapshot with an
	// older one.
	Version uint64
}

// Build validates zs and compiles them into a Snapshot.
func Build(zs []*Zone, version uint64) (*Snapshot, error) {
	return &Snapshot{Version: version}, nil
}
