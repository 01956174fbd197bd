package nspawn

import (
	"context"
	"testing"
	"time"
)

// ForTest boots a machine of suite for t: Rootfs with extra packages, then
// Boot with o (o.Root is filled in). It skips t when Available says machines
// cannot run here, fails t when the machine does not boot, and stops the
// machine when t ends, first logging its journal if t failed.
func ForTest(t testing.TB, suite string, o Opts, extra ...string) *Machine {
	t.Helper()
	if err := Available(); err != nil {
		t.Skip(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	root, err := Rootfs(ctx, suite, extra...)
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("nspawn: %s rootfs built in %v", suite, d.Round(time.Second))
	}
	o.Root = root
	m, err := Boot(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && m.PID() != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			journal, _, _ := m.Exec(ctx, "journalctl", "-b", "--no-pager", "-n", "100")
			cancel()
			t.Logf("nspawn: the journal of %s:\n%s", m.Name, journal)
		}
		if err := m.Stop(); err != nil {
			t.Error(err)
		}
	})
	return m
}
