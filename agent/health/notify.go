package health

import (
	"context"
	"fmt"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
	"github.com/hashicorp/go-hclog"
)

// sd_notify states the agent sends.
const (
	// NotifyReady tells systemd the agent finished starting (Type=notify).
	NotifyReady = daemon.SdNotifyReady
	// NotifyStopping tells systemd the agent is shutting down.
	NotifyStopping = daemon.SdNotifyStopping
	// NotifyWatchdog is the watchdog keep-alive.
	NotifyWatchdog = daemon.SdNotifyWatchdog
)

// Notify sends state (e.g. NotifyReady, "STATUS=connected to istiod") to
// systemd over $NOTIFY_SOCKET. Without a notify socket (not started by
// systemd, or not Type=notify) it does nothing and returns nil.
func Notify(state string) error {
	if _, err := daemon.SdNotify(false, state); err != nil {
		return fmt.Errorf("health: sd_notify %q failed: %w; check that $NOTIFY_SOCKET is writable by the agent's user", state, err)
	}
	return nil
}

// NotifyStatus sends STATUS=<message>, which `systemctl status onramp` shows.
func NotifyStatus(message string) error {
	return Notify("STATUS=" + message)
}

// WatchdogInterval is how often systemd expects a keep-alive ($WATCHDOG_USEC,
// for this process), or 0 when the unit has no watchdog.
func WatchdogInterval() (time.Duration, error) {
	d, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return 0, fmt.Errorf("health: systemd watchdog settings unreadable: %w; check WatchdogSec in the unit", err)
	}
	return d, nil
}

// RunWatchdog sends WATCHDOG=1 at half the unit's watchdog interval until ctx
// is done, but only while alive returns nil (a nil alive means always): a
// wedged agent stops pinging and systemd restarts it. Without a watchdog it
// returns at once.
func RunWatchdog(ctx context.Context, alive func() error, log hclog.Logger) error {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	log = log.Named("watchdog")
	interval, err := WatchdogInterval()
	if err != nil || interval == 0 {
		return err
	}
	every := interval / 2
	log.Debug("systemd watchdog enabled", "interval", interval, "ping_every", every)
	ping := func() {
		if alive != nil {
			if err := alive(); err != nil {
				log.Warn("not pinging the systemd watchdog: agent not alive", "error", err)
				return
			}
		}
		if err := Notify(NotifyWatchdog); err != nil {
			log.Warn("watchdog ping failed", "error", err)
		}
	}
	ping()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			ping()
		}
	}
}
