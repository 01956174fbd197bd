package netns

import (
	"context"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTwoHostsTalkAndKeepOwnResolvConf(t *testing.T) {
	if err := Available(); err != nil {
		t.Skip(err)
	}
	a, err := New(UniqueName("ta"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := New(UniqueName("tb"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := Connect(a, netip.MustParsePrefix("10.231.0.1/30"), b, netip.MustParsePrefix("10.231.0.2/30")); err != nil {
		t.Fatal(err)
	}
	ln, err := b.Listen("tcp", "10.231.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.WriteString(c, "hello from b")
			c.Close()
		}
	}()
	c, err := a.DialContext(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(c)
	c.Close()
	if string(got) != "hello from b" {
		t.Fatalf("got %q", got)
	}

	if err := a.SetResolvConf("nameserver 10.231.0.2\nsearch example.test\n"); err != nil {
		t.Fatal(err)
	}
	out, err := a.Command(context.Background(), "cat", "/etc/resolv.conf").Output()
	if err != nil || !strings.Contains(string(out), "search example.test") {
		t.Fatalf("resolv.conf inside: %q %v", out, err)
	}
	host, _ := os.ReadFile("/etc/resolv.conf")
	if strings.Contains(string(host), "example.test") {
		t.Fatal("the host's resolv.conf changed")
	}
	a.Close()
	if _, err := os.Stat(filepath.Join("/etc/netns", a.Name)); !os.IsNotExist(err) {
		t.Fatalf("resolv.conf dir left behind: %v", err)
	}
}
