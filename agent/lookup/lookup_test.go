package lookup

import (
	"context"
	"net"
	"strings"
	"testing"

	"github.com/miekg/dns"
)

func TestQuestion(t *testing.T) {
	for _, tc := range []struct {
		name, typ string
		want      string
		wantType  uint16
		err       string
	}{
		{"10.96.0.12", "", "12.0.96.10.in-addr.arpa.", dns.TypePTR, ""},
		{"10.96.0.12", "ptr", "12.0.96.10.in-addr.arpa.", dns.TypePTR, ""},
		{"2001:db8::1", "", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa.", dns.TypePTR, ""},
		{"fe80::1%eth0", "", "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.e.f.ip6.arpa.", dns.TypePTR, ""},
		{"12.0.96.10.in-addr.arpa", "PTR", "12.0.96.10.in-addr.arpa.", dns.TypePTR, ""},
		{"10.96.0.12", "A", "10.96.0.12.", dns.TypeA, ""},
		{"productpage", "", "productpage.", dns.TypeA, ""},
		{"reviews.ns1.svc.cluster.local.", "srv", "reviews.ns1.svc.cluster.local.", dns.TypeSRV, ""},
		{"x.example", "BOGUS", "", 0, `unknown record type "BOGUS"`},
		{"a..b", "", "", 0, `"a..b" is not a domain name or an IP address`},
	} {
		name, qtype, err := Query{Name: tc.name, Type: tc.typ}.Question()
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q %q: error %v, want %q", tc.name, tc.typ, err, tc.err)
			}
			continue
		}
		if err != nil || name != tc.want || qtype != tc.wantType {
			t.Errorf("%q %q: %q %s %v; want %q %s", tc.name, tc.typ, name, dns.TypeToString[qtype], err, tc.want, dns.TypeToString[tc.wantType])
		}
	}
}

func TestDo(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "productpage." {
			m.Authoritative = true
			rr, _ := dns.NewRR("productpage. 30 IN A 10.96.0.12")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	defer srv.Shutdown()
	addr := pc.LocalAddr().String()

	res, err := Do(context.Background(), Query{Name: "productpage", Server: addr})
	if err != nil || res.Source != "mesh" || res.Rcode != "NOERROR" || len(res.Answers) != 1 || !strings.Contains(res.Answers[0], "10.96.0.12") {
		t.Errorf("mesh name: %+v, %v", res, err)
	}
	res, err = Do(context.Background(), Query{Name: "nope.example", Server: addr})
	if err == nil || err.Error() != "nope.example. A: NXDOMAIN from "+addr || res.Rcode != "NXDOMAIN" || res.Source != "forwarded" {
		t.Errorf("NXDOMAIN: %+v, %v", res, err)
	}
	pc2, _ := net.ListenPacket("udp", "127.0.0.1:0")
	dead := pc2.LocalAddr().String()
	pc2.Close()
	_, err = Do(context.Background(), Query{Name: "productpage", Server: dead})
	if err == nil || !strings.Contains(err.Error(), dead+" did not answer") || !strings.Contains(err.Error(), "is onramp running?") {
		t.Errorf("no server: %v", err)
	}
}
