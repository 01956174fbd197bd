package main

import (
	"net"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/onramp-mesh/onramp/testbed/bench/mmsg"
)

func query(t testing.TB, name string, qtype uint16) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	m.Id = 0x1234
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func reply(t *testing.T, q []byte) *dns.Msg {
	t.Helper()
	buf := make([]byte, mmsg.MaxDatagram)
	n := copy(buf, q)
	r := &responder{ttl: 3600}
	m := r.answer(buf, n)
	if m == 0 {
		t.Fatalf("no reply to %x", q)
	}
	out := new(dns.Msg)
	if err := out.Unpack(buf[:m]); err != nil {
		t.Fatalf("reply does not parse: %v (%x)", err, buf[:m])
	}
	return out
}

func TestAnswerA(t *testing.T) {
	m := reply(t, query(t, "abc.miss.upstream.test.", dns.TypeA))
	if !m.Response || !m.Authoritative || m.Rcode != dns.RcodeSuccess || m.Id != 0x1234 {
		t.Fatalf("header wrong: %v", m.MsgHdr)
	}
	if len(m.Question) != 1 || m.Question[0].Name != "abc.miss.upstream.test." {
		t.Fatalf("question not echoed: %v", m.Question)
	}
	if len(m.Answer) != 1 {
		t.Fatalf("want one answer, got %v", m.Answer)
	}
	a := m.Answer[0].(*dns.A)
	if a.Hdr.Name != "abc.miss.upstream.test." || a.Hdr.Ttl != 3600 {
		t.Fatalf("answer header wrong: %v", a)
	}
	_, bench, _ := net.ParseCIDR("198.18.0.0/15")
	if !bench.Contains(a.A) {
		t.Fatalf("address %v outside 198.18.0.0/15", a.A)
	}
	// Same name in other case: same address.
	m2 := reply(t, query(t, "ABC.Miss.upstream.TEST.", dns.TypeA))
	if !m2.Answer[0].(*dns.A).A.Equal(a.A) {
		t.Fatalf("case changed the address: %v vs %v", m2.Answer[0], a)
	}
	m3 := reply(t, query(t, "abd.miss.upstream.test.", dns.TypeA))
	if m3.Answer[0].(*dns.A).A.Equal(a.A) {
		t.Fatalf("different names got the same address %v", a.A)
	}
}

func TestAnswerNoData(t *testing.T) {
	m := reply(t, query(t, "x.upstream.test.", dns.TypeAAAA))
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Question) != 1 {
		t.Fatalf("want NODATA, got %v", m)
	}
}

func TestAnswerEDNSQueryStillAnswers(t *testing.T) {
	q := new(dns.Msg)
	q.SetQuestion("e.upstream.test.", dns.TypeA)
	q.SetEdns0(1232, true)
	b, _ := q.Pack()
	m := reply(t, b)
	if len(m.Answer) != 1 || len(m.Extra) != 0 {
		t.Fatalf("want one answer and no additional, got %v", m)
	}
}

func TestAnswerRejectsBadInput(t *testing.T) {
	r := &responder{ttl: 1}
	buf := make([]byte, 64)
	if n := r.answer(buf, 5); n != 0 {
		t.Fatalf("runt got a %d-byte reply", n)
	}
	resp := query(t, "a.test.", dns.TypeA)
	resp[2] |= 0x80
	n := copy(buf, resp)
	if r.answer(buf, n) != 0 {
		t.Fatal("answered a response")
	}
	bad := query(t, "a.test.", dns.TypeA)
	bad[12] = 0xc0 // compression pointer in the question
	n = copy(buf, bad)
	if m := r.answer(buf, n); m != headerLen || buf[3]&0x0f != rcodeFormat {
		t.Fatalf("want FORMERR header, got %d bytes rcode %d", m, buf[3]&0x0f)
	}
	notify := query(t, "a.test.", dns.TypeSOA)
	notify[2] = 4 << 3
	n = copy(buf, notify)
	if m := r.answer(buf, n); m != headerLen || buf[3]&0x0f != rcodeNotImp {
		t.Fatalf("want NOTIMP, got %d bytes rcode %d", m, buf[3]&0x0f)
	}
}

// TestServeOverLoopback runs the responder on a real socket and resolves
// through it with a standard client.
func TestServeOverLoopback(t *testing.T) {
	c, err := mmsg.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &responder{ttl: 60}
	done := make(chan error, 1)
	go func() { done <- c.Serve(16, r.answer) }()
	defer func() {
		c.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	cl := &dns.Client{Net: "udp"}
	for i := 0; i < 50; i++ {
		q := new(dns.Msg)
		q.SetQuestion("n"+string(rune('a'+i%26))+".upstream.test.", dns.TypeA)
		m, _, err := cl.Exchange(q, c.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		if len(m.Answer) != 1 || m.Answer[0].Header().Ttl != 60 {
			t.Fatalf("bad answer %v", m)
		}
	}
	// The counter moves after sendmmsg returns, which can be after the client read its reply.
	for deadline := time.Now().Add(2 * time.Second); c.Sent.Load() < 50 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if got := c.Sent.Load(); got != 50 {
		t.Fatalf("sent %d replies, want 50", got)
	}
}

// FuzzAnswer feeds arbitrary datagrams: the responder must never panic, and
// any reply it makes must parse as a DNS response.
func FuzzAnswer(f *testing.F) {
	f.Add(query(f, "a.upstream.test.", dns.TypeA))
	f.Add(query(f, "b.test.", dns.TypeAAAA))
	f.Add([]byte{0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 63})
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := make([]byte, mmsg.MaxDatagram)
		n := copy(buf, in)
		r := &responder{ttl: 5}
		m := r.answer(buf, n)
		if m == 0 {
			return
		}
		if m > len(buf) {
			t.Fatalf("reply length %d beyond buffer", m)
		}
		if buf[2]&0x80 == 0 {
			t.Fatalf("reply without QR: %x", buf[:m])
		}
		var msg dns.Msg
		if err := msg.Unpack(buf[:m]); err != nil && m > headerLen {
			t.Fatalf("reply to %x does not parse: %v", in, err)
		}
	})
}
