package udpbatch

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// TestEchoBatch sends datagrams from several clients, reads them in
// batches and answers each one through Write; every client must get its
// own answer.
func TestEchoBatch(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			addr := "127.0.0.1:0"
			if network == "udp6" {
				addr = "[::1]:0"
			}
			pc, err := net.ListenPacket(network, addr)
			if err != nil {
				t.Skipf("%s: %v", network, err)
			}
			defer pc.Close()
			b, err := New(pc.(*net.UDPConn), 8, 512)
			if err != nil {
				t.Fatal(err)
			}
			go func() {
				for {
					n, err := b.Read()
					if err != nil {
						return
					}
					for i := range n {
						if !b.SourceIP(i).IsLoopback() || b.Addr(i).Port() == 0 {
							t.Errorf("bad source %v", b.Addr(i))
						}
						b.Out[i] = append(append(b.Out[i][:0], "re:"...), b.In[i]...)
					}
					b.Write(n)
				}
			}()
			const clients = 20
			conns := make([]net.Conn, clients)
			for i := range conns {
				c, err := net.Dial(network, pc.LocalAddr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				conns[i] = c
				c.Write([]byte{byte('a' + i)})
			}
			buf := make([]byte, 64)
			for i, c := range conns {
				c.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := c.Read(buf)
				if err != nil {
					t.Fatalf("client %d: %v", i, err)
				}
				if want := []byte{'r', 'e', ':', byte('a' + i)}; !bytes.Equal(buf[:n], want) {
					t.Fatalf("client %d got %q, want %q", i, buf[:n], want)
				}
			}
		})
	}
}

func TestNewRejectsTinyBatch(t *testing.T) {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	if _, err := New(pc.(*net.UDPConn), 0, 512); err == nil {
		t.Fatal("a batch of 0 datagrams was accepted")
	}
}
