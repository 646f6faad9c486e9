// Package health is the probing engine of the health checker: it probes
// endpoints (HTTP, HTTPS, TCP, DNS), turns each endpoint's results into an
// up/down state with hysteresis, and schedules probes for many endpoints.
//
// The package knows nothing of zones, pools or the database. The checker
// daemon feeds a Scheduler its targets and writes the transitions it
// reports back; Probe and Tracker can also be used on their own.
//
// The state machine follows gdnsd's monitor (libgdnsd/mon.c): an endpoint
// that is up goes down once it has failed Fall times without OK consecutive
// successes in between, and a down endpoint comes back only after Rise
// consecutive successes. Recovery is deliberately slower than failure, so an
// endpoint that fails half of its probes settles down and stays there
// instead of flapping; see DefaultRise for the numbers.
package health
