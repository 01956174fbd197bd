package main

import (
	"net"
	"testing"
	"time"

	"github.com/onramp-mesh/onramp/testbed/bench/mmsg"
)

func TestEchoOverLoopback(t *testing.T) {
	c, err := mmsg.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(8, echo) }()
	defer func() {
		c.Close()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	conn, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	q := []byte{0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'a', 0, 0, 1, 0, 1}
	for i := 0; i < 20; i++ {
		if _, err := conn.Write(q); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 512)
		n, err := conn.Read(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n != len(q) || buf[2] != 0x81 || buf[0] != 0xab || string(buf[3:n]) != string(q[3:]) {
			t.Fatalf("echo %x, want %x with QR set", buf[:n], q)
		}
	}
	// A runt gets no reply; the next real query still does.
	conn.Write([]byte{1, 2, 3})
	conn.Write(q)
	buf := make([]byte, 512)
	if n, err := conn.Read(buf); err != nil || n != len(q) {
		t.Fatalf("after runt: %d bytes, %v", n, err)
	}
}

func FuzzEcho(f *testing.F) {
	f.Add([]byte{0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := make([]byte, mmsg.MaxDatagram)
		n := copy(buf, in)
		m := echo(buf, n)
		if n < 12 && m != 0 {
			t.Fatalf("replied to a %d-byte runt", n)
		}
		if m > 0 && (m != n || buf[2]&0x80 == 0) {
			t.Fatalf("bad echo of %x: %x", in, buf[:m])
		}
	})
}
