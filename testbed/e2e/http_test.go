package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"time"

	"github.com/onramp-mesh/onramp/testbed/netns"
)

func prefix(a netip.Addr) netip.Prefix { return netip.PrefixFrom(a, 24) }

func postVia(ctx context.Context, ns *netns.NS, url string) error {
	c := &http.Client{Transport: &http.Transport{DialContext: ns.DialContext}, Timeout: 5 * time.Second}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, nil)
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST %s: %s", url, resp.Status)
	}
	return nil
}
