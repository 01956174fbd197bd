package main

import (
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

func cmdLookup(args []string) error {
	fs := flag.NewFlagSet("lookup", flag.ContinueOnError)
	server := fs.String("server", "127.0.0.1:15053", "the DNS proxy to ask")
	tcp := fs.Bool("tcp", false, "ask over TCP")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return fmt.Errorf("lookup: usage: onramp lookup NAME [TYPE]")
	}
	name := dns.Fqdn(fs.Arg(0))
	qtype := dns.TypeA
	if fs.NArg() == 2 {
		t, ok := dns.StringToType[strings.ToUpper(fs.Arg(1))]
		if !ok {
			return fmt.Errorf("lookup: unknown record type %q (e.g. A, AAAA, PTR, SRV)", fs.Arg(1))
		}
		qtype = t
	}
	if qtype == dns.TypePTR {
		if rev, err := dns.ReverseAddr(fs.Arg(0)); err == nil {
			name = rev
		}
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Timeout: 5 * time.Second}
	if *tcp {
		c.Net = "tcp"
	}
	r, rtt, err := c.Exchange(m, *server)
	if err != nil {
		return fmt.Errorf("lookup: %s did not answer: %w (is onramp running?)", *server, err)
	}
	source := "forwarded"
	if r.Authoritative {
		source = "mesh"
	}
	fmt.Printf(";; %s %s: %s from %s (%s) in %s\n", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], *server, source, rtt.Round(time.Microsecond))
	for _, rr := range r.Answer {
		fmt.Println(rr.String())
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("lookup: %s %s: %s", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode])
	}
	return nil
}
