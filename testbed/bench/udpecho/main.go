// Command udpecho is the benchmark's ceiling: it sends every datagram back to
// its sender with the DNS QR bit set, doing no other work, so dnsperf counts
// each echo as an answered query. What it reaches on a core is the most any
// DNS server can reach on that core through the same kernel UDP path.
//
//	udpecho -listen 127.0.0.1:20054 -batch 64
//
// It reads and writes in batches with recvmmsg/sendmmsg (package mmsg), one
// socket and one OS thread per -sockets, sharing the port with SO_REUSEPORT.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/onramp-mesh/onramp/testbed/bench/mmsg"
)

// echo marks the datagram as a response and sends it back unchanged
// otherwise; runts shorter than a DNS header get no reply.
func echo(buf []byte, n int) int {
	if n < 12 {
		return 0
	}
	buf[2] |= 0x80
	return n
}

func main() {
	listen := flag.String("listen", "127.0.0.1:20054", "UDP address to echo on (loopback only)")
	batch := flag.Int("batch", 64, "datagrams per recvmmsg/sendmmsg call")
	sockets := flag.Int("sockets", 1, "SO_REUSEPORT sockets, each served by its own goroutine")
	flag.Parse()

	var conns []*mmsg.Conn
	for i := 0; i < *sockets; i++ {
		c, err := mmsg.Listen(*listen)
		if err != nil {
			fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
			os.Exit(1)
		}
		conns = append(conns, c)
	}
	fmt.Fprintf(os.Stderr, "udpecho: echoing on %s with %d socket(s)\n", conns[0].LocalAddr(), len(conns))
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		for _, c := range conns {
			c.Close()
		}
	}()
	var wg sync.WaitGroup
	failed := false
	var mu sync.Mutex
	for _, c := range conns {
		wg.Add(1)
		go func(c *mmsg.Conn) {
			defer wg.Done()
			if err := c.Serve(*batch, echo); err != nil {
				fmt.Fprintf(os.Stderr, "udpecho: %v\n", err)
				mu.Lock()
				failed = true
				mu.Unlock()
			}
		}(c)
	}
	wg.Wait()
	if failed {
		os.Exit(1)
	}
}
