// Package lookup asks a DNS server one question and describes the answer, the
// way `onramp lookup` shows what the local proxy tells applications.
package lookup

import (
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Query is one question to one server.
type Query struct {
	// Name is a domain name or an IP address. An IP address with no Type
	// asks for its PTR record under in-addr.arpa or ip6.arpa.
	Name string
	// Type is a record type such as "A", "AAAA", "PTR" or "SRV"; empty means
	// A for a name and PTR for an IP address.
	Type string
	// Server is the DNS server, IP:port.
	Server string
	// TCP asks over TCP instead of UDP.
	TCP bool
	// Timeout bounds the exchange; 0 means 5s.
	Timeout time.Duration
}

// Result is the answer to a Query.
type Result struct {
	Name    string   `json:"name"`   // the question's name, fully qualified
	Type    string   `json:"type"`   // the question's type
	Server  string   `json:"server"` // who answered
	Rcode   string   `json:"rcode"`  // NOERROR, NXDOMAIN, SERVFAIL, ...
	Source  string   `json:"source"` // "mesh" (authoritative, from the name table) or "forwarded"
	RTT     string   `json:"rtt"`    // round-trip time
	Answers []string `json:"answers"`
}

// Question returns the name and type q asks for.
func (q Query) Question() (name string, qtype uint16, err error) {
	ip, ipErr := netip.ParseAddr(q.Name)
	switch {
	case q.Type == "" && ipErr == nil:
		qtype = dns.TypePTR
	case q.Type == "":
		qtype = dns.TypeA
	default:
		t, ok := dns.StringToType[strings.ToUpper(q.Type)]
		if !ok {
			return "", 0, fmt.Errorf("unknown record type %q (e.g. A, AAAA, PTR, SRV)", q.Type)
		}
		qtype = t
	}
	name = dns.Fqdn(q.Name)
	if qtype == dns.TypePTR && ipErr == nil {
		if name, err = dns.ReverseAddr(ip.WithZone("").String()); err != nil {
			return "", 0, fmt.Errorf("%q: %v", q.Name, err)
		}
	}
	if _, ok := dns.IsDomainName(name); !ok {
		return "", 0, fmt.Errorf("%q is not a domain name or an IP address", q.Name)
	}
	return name, qtype, nil
}

// Do sends q and returns the answer. A DNS answer with an rcode other than
// NOERROR is returned with an error naming it, so that callers print the
// answer and fail.
func Do(ctx context.Context, q Query) (Result, error) {
	name, qtype, err := q.Question()
	if err != nil {
		return Result{}, err
	}
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.SetEdns0(1232, false)
	c := &dns.Client{Timeout: q.Timeout}
	if c.Timeout == 0 {
		c.Timeout = 5 * time.Second
	}
	if q.TCP {
		c.Net = "tcp"
	}
	res := Result{Name: name, Type: dns.TypeToString[qtype], Server: q.Server, Answers: []string{}}
	r, rtt, err := c.ExchangeContext(ctx, m, q.Server)
	if err != nil {
		return res, fmt.Errorf("%s did not answer: %w (is onramp running? systemctl status onramp)", q.Server, err)
	}
	res.Rcode, res.RTT, res.Source = dns.RcodeToString[r.Rcode], rtt.Round(time.Microsecond).String(), "forwarded"
	if r.Authoritative {
		res.Source = "mesh"
	}
	for _, rr := range r.Answer {
		res.Answers = append(res.Answers, rr.String())
	}
	if r.Rcode != dns.RcodeSuccess {
		return res, fmt.Errorf("%s %s: %s from %s", name, res.Type, res.Rcode, q.Server)
	}
	return res, nil
}

// WriteText prints r as dig-like text.
func (r Result) WriteText(w io.Writer) {
	fmt.Fprintf(w, ";; %s %s: %s from %s (%s) in %s\n", r.Name, r.Type, r.Rcode, r.Server, r.Source, r.RTT)
	for _, a := range r.Answers {
		fmt.Fprintln(w, a)
	}
}
