package health

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	networkingv1alpha3 "istio.io/api/networking/v1alpha3"
)

// maxOutput bounds how much of a failing probe's body or output goes into
// the unhealthy message.
const maxOutput = 256

func portOK(kind string, port uint32) error {
	if port == 0 || port > 65535 {
		return fmt.Errorf("health: readiness probe %s port %d is out of range; set a port in 1-65535 in the WorkloadGroup's probe", kind, port)
	}
	return nil
}

func hostOr(host string) string {
	if host == "" {
		return DefaultHost
	}
	return host
}

// httpCheck: GET scheme://host:port/path; 200-399 is success. Redirects are
// not followed (a 3xx is itself a success) and the connection is not reused.
// HTTPS does not verify the certificate, as Kubernetes probes do not.
func httpCheck(c *networkingv1alpha3.HTTPHealthCheckConfig) (string, check, error) {
	if err := portOK("httpGet", c.GetPort()); err != nil {
		return "", nil, err
	}
	scheme := strings.ToLower(c.GetScheme())
	switch scheme {
	case "":
		scheme = "http"
	case "http", "https":
	default:
		return "", nil, fmt.Errorf("health: readiness probe httpGet scheme %q is not HTTP or HTTPS; fix the WorkloadGroup's probe", c.GetScheme())
	}
	path := c.GetPath()
	if !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	u, err := url.Parse(scheme + "://" + net.JoinHostPort(hostOr(c.GetHost()), strconv.Itoa(int(c.GetPort()))) + path)
	if err != nil {
		return "", nil, fmt.Errorf("health: readiness probe httpGet host %q / path %q do not form a URL (%v); fix the WorkloadGroup's probe", c.GetHost(), c.GetPath(), err)
	}
	target := u.String()
	header := http.Header{"User-Agent": {"onramp-probe/1.0"}}
	hostHeader := ""
	for _, h := range c.GetHttpHeaders() {
		if h.GetName() == "" {
			return "", nil, errors.New("health: readiness probe httpGet has a header without a name; fix the WorkloadGroup's probe")
		}
		if strings.EqualFold(h.GetName(), "Host") {
			hostHeader = h.GetValue()
			continue
		}
		header.Add(h.GetName(), h.GetValue())
	}
	client := &http.Client{
		Transport: &http.Transport{
			DisableKeepAlives: true,
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // probes check liveness, not identity
			Proxy:             nil,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	desc := "httpGet " + target
	return desc, func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
		if err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		req.Header = header.Clone()
		if hostHeader != "" {
			req.Host = hostHeader
		}
		resp, err := client.Do(req)
		if err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, maxOutput))
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			msg := fmt.Sprintf("%s: HTTP %d", desc, resp.StatusCode)
			if b := strings.TrimSpace(string(body)); b != "" {
				msg += ": " + b
			}
			return errors.New(msg)
		}
		return nil
	}, nil
}

// tcpCheck: success when a TCP connection opens.
func tcpCheck(c *networkingv1alpha3.TCPHealthCheckConfig) (string, check, error) {
	if err := portOK("tcpSocket", c.GetPort()); err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort(hostOr(c.GetHost()), strconv.Itoa(int(c.GetPort())))
	desc := "tcpSocket " + addr
	return desc, func(ctx context.Context) error {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		return conn.Close()
	}, nil
}

// execCheck: success when the command exits 0. On timeout the command's whole
// process group is killed.
func execCheck(c *networkingv1alpha3.ExecHealthCheckConfig) (string, check, error) {
	argv := c.GetCommand()
	if len(argv) == 0 || argv[0] == "" {
		return "", nil, errors.New("health: readiness probe exec has no command; fix the WorkloadGroup's probe")
	}
	desc := "exec " + strings.Join(argv, " ")
	return desc, func(ctx context.Context) error {
		cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
		var out bytes.Buffer
		cmd.Stdout = &limitedBuffer{buf: &out}
		cmd.Stderr = cmd.Stdout
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 100 * time.Millisecond
		err := cmd.Run()
		if err == nil {
			return nil
		}
		msg := fmt.Sprintf("%s: %v", desc, err)
		if o := strings.TrimSpace(out.String()); o != "" {
			msg += ": " + o
		}
		return errors.New(msg)
	}, nil
}

// grpcCheck: gRPC health checking protocol (grpc.health.v1.Health/Check);
// success when the service is SERVING.
func grpcCheck(c *networkingv1alpha3.GrpcHealthCheckConfig) (string, check, error) {
	if err := portOK("grpc", c.GetPort()); err != nil {
		return "", nil, err
	}
	addr := net.JoinHostPort(DefaultHost, strconv.Itoa(int(c.GetPort())))
	desc := "grpc " + addr
	if c.GetService() != "" {
		desc += " service " + c.GetService()
	}
	return desc, func(ctx context.Context) error {
		conn, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		defer conn.Close()
		resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: c.GetService()})
		if err != nil {
			return fmt.Errorf("%s: %w", desc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("%s: status %s", desc, resp.GetStatus())
		}
		return nil
	}, nil
}

// limitedBuffer keeps the first maxOutput bytes written and drops the rest.
type limitedBuffer struct{ buf *bytes.Buffer }

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxOutput - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
