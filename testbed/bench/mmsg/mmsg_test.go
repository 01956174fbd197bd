package mmsg

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"
)

func upper(buf []byte, n int) int {
	for i := 0; i < n; i++ {
		if 'a' <= buf[i] && buf[i] <= 'z' {
			buf[i] -= 'a' - 'A'
		}
	}
	return n
}

// TestBurstFromManyClients sends bursts larger than one batch from several
// sockets and checks every datagram comes back, changed, to its sender.
func TestBurstFromManyClients(t *testing.T) {
	c, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Serve(8, upper) }()
	var wg sync.WaitGroup
	const clients, per = 4, 50
	errs := make(chan error, clients)
	for k := 0; k < clients; k++ {
		wg.Add(1)
		go func(k int) {
			defer wg.Done()
			conn, err := net.Dial("udp", c.LocalAddr().String())
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			for i := 0; i < per; i++ {
				fmt.Fprintf(conn, "client-%d-msg-%d", k, i)
			}
			got := map[string]bool{}
			buf := make([]byte, 100)
			for len(got) < per {
				n, err := conn.Read(buf)
				if err != nil {
					errs <- fmt.Errorf("client %d after %d replies: %w", k, len(got), err)
					return
				}
				got[string(buf[:n])] = true
			}
			for i := 0; i < per; i++ {
				if want := fmt.Sprintf("CLIENT-%d-MSG-%d", k, i); !got[want] {
					errs <- fmt.Errorf("client %d: no reply %q", k, want)
					return
				}
			}
		}(k)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	c.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if c.Received.Load() != clients*per || c.Sent.Load() != clients*per {
		t.Fatalf("received %d sent %d, want %d", c.Received.Load(), c.Sent.Load(), clients*per)
	}
}

func TestDropWhenHandlerSaysSo(t *testing.T) {
	c, err := Listen("[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	done := make(chan error, 1)
	go func() {
		done <- c.Serve(4, func(buf []byte, n int) int {
			if n < 3 {
				return 0
			}
			return n
		})
	}()
	conn, err := net.Dial("udp", c.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(3 * time.Second))
	conn.Write([]byte("x"))
	conn.Write([]byte("keep"))
	buf := make([]byte, 10)
	n, err := conn.Read(buf)
	if err != nil || string(buf[:n]) != "keep" {
		t.Fatalf("got %q, %v; want only the long datagram back", buf[:n], err)
	}
	c.Close()
	<-done
}

func TestBadArguments(t *testing.T) {
	if _, err := Listen("localhost:53"); err == nil {
		t.Error("accepted a host name")
	}
	c, err := Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Serve(0, upper); err == nil {
		t.Error("accepted batch 0")
	}
	c.Close()
}

func Example() {
	c, err := Listen("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	go c.Serve(64, upper)
	defer c.Close()

	conn, _ := net.Dial("udp", c.LocalAddr().String())
	defer conn.Close()
	conn.Write([]byte("hello"))
	buf := make([]byte, 16)
	n, _ := conn.Read(buf)
	fmt.Println(string(buf[:n]))
	// Output: HELLO
}
