// Package transfer serves the zones of a Meridian server to secondary
// servers: AXFR (RFC 5936) and IXFR (RFC 1995) over TCP to the peers a
// per-zone access list allows, by address and TSIG key (RFC 8945), and
// NOTIFY (RFC 1996) to the listed secondaries whenever a zone's serial
// changes.
//
// The package knows no sockets of its own but NOTIFY's: the DNS server
// (package dnsserver) hands it the transfer queries it reads, through
// the dnsserver.Transferer interface, and it reads zones from the
// snapshots it is given with Publish, as the server does. Every
// transfer is refused unless a rule of Config.Allow allows it.
//
// Publish keeps, per zone that may be transferred, a bounded journal of
// the differences between consecutive serials, so that an IXFR from a
// recent serial carries the changes alone; from any other serial it
// carries the whole zone (RFC 1995 section 4). The work happens when a
// snapshot is published, never on the query path.
package transfer
