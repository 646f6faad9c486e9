package postgres

// ReplicaPoll is the watch loop's poll, for the benchmark of its cost.
const ReplicaPoll = replicaPoll
