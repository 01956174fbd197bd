package health

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// notifySocket listens where $NOTIFY_SOCKET points and returns the messages.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	ch := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			ch <- string(buf[:n])
		}
	}()
	return ch
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no sd_notify message within 5s")
		return ""
	}
}

func TestNotify(t *testing.T) {
	ch := notifySocket(t)
	if err := Notify(NotifyReady); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ch); m != "READY=1" {
		t.Errorf("got %q, want READY=1", m)
	}
	if err := NotifyStatus("connected to istiod"); err != nil {
		t.Fatal(err)
	}
	if m := recv(t, ch); m != "STATUS=connected to istiod" {
		t.Errorf("got %q", m)
	}
}

func TestNotifyWithoutSystemdIsANoOp(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := Notify(NotifyReady); err != nil {
		t.Errorf("Notify without a socket: %v", err)
	}
}

func TestWatchdogPingsWhileAlive(t *testing.T) {
	ch := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // 100ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	var alive error
	aliveCh := make(chan error, 1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunWatchdog(ctx, func() error {
			select {
			case alive = <-aliveCh:
			default:
			}
			return alive
		}, nil)
	}()
	for i := 0; i < 3; i++ {
		if m := recv(t, ch); m != "WATCHDOG=1" {
			t.Fatalf("got %q, want WATCHDOG=1", m)
		}
	}
	aliveCh <- errors.New("name table goroutine stuck")
	time.Sleep(60 * time.Millisecond) // let an in-flight ping drain
	for len(ch) > 0 {
		<-ch
	}
	select {
	case m := <-ch:
		t.Fatalf("pinged %q while not alive", m)
	case <-time.After(300 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("RunWatchdog: %v", err)
	}
}

func TestWatchdogDisabled(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "")
	done := make(chan error, 1)
	go func() { done <- RunWatchdog(context.Background(), nil, nil) }()
	select {
	case err := <-done:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(time.Second):
		t.Fatal("RunWatchdog without a watchdog did not return")
	}
}
