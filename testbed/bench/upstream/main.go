// Command upstream is the benchmark's loopback upstream: a minimal
// authoritative responder that answers every A query with one synthetic
// address and every other query type with an empty NOERROR answer.
//
// Every server under test forwards names outside the mesh table to the same
// upstream, so the forwarded-name and cache-miss workloads compare the servers'
// forwarding and caching, not their upstreams. It serves with
// recvmmsg/sendmmsg and builds each reply in place, so it stays well ahead of
// the servers it feeds.
//
//	upstream -listen 127.0.0.1:20053 -ttl 3600
//
// The address for a name is a hash of the name inside 198.18.0.0/15 (the
// benchmarking range of RFC 2544), so every server sees the same answer.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/onramp-mesh/onramp/testbed/bench/mmsg"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:20053", "UDP address to answer on (loopback only)")
	ttl := flag.Uint("ttl", 3600, "TTL of the synthetic A records, in seconds")
	batch := flag.Int("batch", 64, "datagrams per recvmmsg/sendmmsg call")
	flag.Parse()

	c, err := mmsg.Listen(*listen)
	if err != nil {
		fmt.Fprintf(os.Stderr, "upstream: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "upstream: answering on %s\n", c.LocalAddr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sig; c.Close() }()
	r := &responder{ttl: uint32(*ttl)}
	if err := c.Serve(*batch, r.answer); err != nil {
		fmt.Fprintf(os.Stderr, "upstream: %v\n", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "upstream: %d queries, %d replies\n", c.Received.Load(), c.Sent.Load())
}
