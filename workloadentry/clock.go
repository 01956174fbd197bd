package workloadentry

import "time"

// Clock is the time source of a Registry. Tests pass a manual clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f in its own goroutine after d; stop cancels it and
	// reports whether it did so before f ran.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// SystemClock is the Clock of the running system.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (SystemClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}
