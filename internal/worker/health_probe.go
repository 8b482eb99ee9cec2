package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/warren-project/warren/api"
)

// maxReasonLen bounds the short reason of a failed probe, which goes into
// messages and errors.
const maxReasonLen = 200

// hostLoopback is the address of every container while containers share
// the host's network namespace.
const hostLoopback = "127.0.0.1"

// probeClient is shared by HTTP probes. It keeps no idle connections (a
// probe is a fresh client, as a load balancer would be) and does not follow
// redirects: a 3xx is itself healthy.
var probeClient = &http.Client{
	Transport:     &http.Transport{DisableKeepAlives: true, Proxy: nil},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// probeHost is where the agent reaches task t's container: its overlay
// address, or the host's loopback for host networking. The probes run on
// the node, not in the container (exec aside), so they see what the
// node's clients see.
func (x *taskExec) probeHost(t *api.Task) string {
	if x.net != nil && onOverlay(t) {
		return t.GetAddress()
	}
	return hostLoopback
}

// probe runs one probe of hc against task t's container, within the
// check's timeout.
func (x *taskExec) probe(ctx context.Context, t *api.Task, hc *healthCheck) probeResult {
	at := x.now()
	ctx, cancel := context.WithTimeout(ctx, hc.timeout)
	defer cancel()
	var r probeResult
	switch hc.kind {
	case probeExec:
		r = x.probeExec(ctx, t.GetId(), hc)
	case probeHTTP:
		r = probeHTTPGet(ctx, net.JoinHostPort(x.probeHost(t), strconv.Itoa(int(hc.port))), hc.path)
	case probeTCP:
		r = probeTCPConnect(ctx, net.JoinHostPort(x.probeHost(t), strconv.Itoa(int(hc.port))))
	default:
		r = probeResult{output: "no probe", reason: "no probe"}
	}
	if !r.ok && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		r.reason = fmt.Sprintf("timed out after %s", hc.timeout)
	}
	r.at = at
	return r
}

// probeExec runs the command in the container: exit 0 is healthy.
func (x *taskExec) probeExec(ctx context.Context, id string, hc *healthCheck) probeResult {
	code, out, err := x.rt.Exec(ctx, id, hc.command, hc.timeout)
	output := string(out)
	switch {
	case err != nil:
		return probeResult{output: joinNonEmpty("\n", output, err.Error()), reason: shortReason(err.Error())}
	case code != 0:
		reason := fmt.Sprintf("exit code %d", code)
		if line := firstLine(output); line != "" {
			reason += ": " + line
		}
		return probeResult{output: output, reason: shortReason(reason)}
	}
	return probeResult{ok: true, output: output}
}

// probeHTTPGet GETs path at addr: a 2xx or 3xx answer is healthy.
func probeHTTPGet(ctx context.Context, addr, path string) probeResult {
	url := "http://" + addr + path
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return probeResult{output: err.Error(), reason: shortReason(err.Error())}
	}
	req.Header.Set("User-Agent", "warren-health-check")
	resp, err := probeClient.Do(req)
	if err != nil {
		return probeResult{output: err.Error(), reason: netReason(err)}
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxHealthOutput))
	status := "HTTP " + resp.Status
	if resp.StatusCode >= 200 && resp.StatusCode < 400 {
		return probeResult{ok: true, output: "GET " + url + ": " + status}
	}
	return probeResult{output: joinNonEmpty("\n", "GET "+url+": "+status, string(body)), reason: status}
}

// probeTCPConnect connects to addr: a connection accepted is healthy.
func probeTCPConnect(ctx context.Context, addr string) probeResult {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return probeResult{output: err.Error(), reason: netReason(err)}
	}
	_ = conn.Close()
	return probeResult{ok: true, output: "connected to " + addr}
}

// netReason is the heart of a network error: "connection refused" rather
// than `Get "http://127.0.0.1:80/": dial tcp 127.0.0.1:80: connect:
// connection refused`.
func netReason(err error) string {
	var se *os.SyscallError
	if errors.As(err, &se) {
		return se.Err.Error()
	}
	return shortReason(err.Error())
}

func shortReason(s string) string {
	return truncate(strings.TrimSpace(s), maxReasonLen)
}

func firstLine(s string) string {
	for line := range strings.Lines(s) {
		if line = strings.TrimSpace(line); line != "" {
			return line
		}
	}
	return ""
}

func joinNonEmpty(sep string, parts ...string) string {
	var keep []string
	for _, p := range parts {
		if p = strings.TrimSpace(p); p != "" {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, sep)
}
