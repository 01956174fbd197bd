// Package nametable turns the NDS name table that istiod pushes (a
// ndspb.NameTable) into an immutable lookup index that the DNS proxy answers
// mesh queries from, and keeps the last good table on disk.
//
// Build validates the table and precomputes, per name, the answer records in
// DNS wire format. The query path, Index.AppendResponse, then takes no lock,
// does not allocate, and writes a complete response: one map lookup plus a few
// copies for a direct hit.
//
// The names answered follow Istio's agent (see ISTIO-WIRE.md §5):
//
//   - every entry answers for its host, "host.";
//   - a Kubernetes entry whose host ends in "svc.<cluster domain>" also
//     answers for "name.ns.", "name.ns.svc." and, in the proxy's own
//     namespace only, "name.";
//   - a wildcard host "*.suffix" answers for every name below suffix that has
//     no entry of its own, the most specific wildcard first;
//   - "<name>.<search domain>." answers with a CNAME to "<name>." followed by
//     the addresses of <name>, for EVERY domain of the host's search list
//     (Istio does this only for the first), unless the expanded name is a
//     name of its own. A search-list lookup therefore ends in one round trip.
//   - A and AAAA are answered; a name lacking the asked family gets NOERROR
//     with no records and the AA bit (NODATA, never NXDOMAIN). Records are
//     rotated per query (round robin).
//   - PTR queries for every mesh IP (in-addr.arpa and ip6.arpa) answer with
//     the primary name of that IP.
//
// Every other query (other types, names outside the table) is not answered,
// and the proxy forwards it upstream.
package nametable
