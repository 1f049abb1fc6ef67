package labworld

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// prober runs the readiness probes of the Pods the lab runs a process for, as a kubelet does:
// httpGet and tcpSocket probes reach the pod IP and port through the cluster's PodNetwork; a
// Pod turns ready after successThreshold passes in a row and unready after failureThreshold
// failures in a row. Exec and gRPC probes cannot run here: a container with one counts as ready
// once its process serves a port. One Kubelet worker calls it, so it needs no lock.
type prober struct {
	network  *PodNetwork
	failures map[string]int  // namespace/name -> failures in a row
	passes   map[string]int  // namespace/name -> passes in a row
	ready    map[string]bool // namespace/name -> last verdict
}

func (p *prober) forget(id string) {
	delete(p.failures, id)
	delete(p.passes, id)
	delete(p.ready, id)
}

// period is how soon the Pod is probed again: the shortest periodSeconds of its readiness
// probes (10 s by default, as the kubelet's).
func (p *prober) period(o *corev1.Pod) time.Duration {
	best := 10 * time.Second
	for k, c := range o.Spec.Containers {
		if r := c.ReadinessProbe; r != nil && r.PeriodSeconds > 0 {
			if d := time.Duration(r.PeriodSeconds) * time.Second; k == 0 || d < best {
				best = d
			}
		}
	}
	return best
}

// check probes the Pod at ip and returns "" when it is ready, else why not.
func (p *prober) check(ctx context.Context, o *corev1.Pod, ip string) string {
	id := o.Namespace + "/" + o.Name
	if p.network == nil {
		return "no pod network in this lab: nothing can reach the Pod"
	}
	why := ""
	for _, c := range o.Spec.Containers {
		if err := p.probe(ctx, c, ip); err != nil {
			why = fmt.Sprintf("container %s: readiness probe failed: %v", c.Name, err)
			break
		}
	}
	if why == "" {
		p.failures[id] = 0
		p.passes[id]++
	} else {
		p.passes[id] = 0
		p.failures[id]++
	}
	success, failure := thresholds(o)
	switch {
	case why == "" && p.passes[id] >= success:
		p.ready[id] = true
	case why != "" && p.failures[id] >= failure:
		p.ready[id] = false
	}
	if p.ready[id] {
		return ""
	}
	if why == "" {
		why = "readiness probe: too few passes in a row yet"
	}
	return why
}

// thresholds are the Pod's successThreshold and failureThreshold (the strictest of its
// containers'; 1 and 3 by default).
func thresholds(o *corev1.Pod) (success, failure int) {
	success, failure = 1, 3
	for _, c := range o.Spec.Containers {
		if r := c.ReadinessProbe; r != nil {
			if int(r.SuccessThreshold) > success {
				success = int(r.SuccessThreshold)
			}
			if r.FailureThreshold > 0 && int(r.FailureThreshold) < failure {
				failure = int(r.FailureThreshold)
			}
		}
	}
	return success, failure
}

// probe runs container c's readiness probe against the Pod at ip.
func (p *prober) probe(ctx context.Context, c corev1.Container, ip string) error {
	r := c.ReadinessProbe
	timeout := time.Second
	if r != nil && r.TimeoutSeconds > 0 {
		timeout = time.Duration(r.TimeoutSeconds) * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	switch {
	case r != nil && r.HTTPGet != nil:
		g := r.HTTPGet
		port, err := containerPort(c, g.Port)
		if err != nil {
			return err
		}
		scheme := "http"
		if g.Scheme == corev1.URISchemeHTTPS {
			scheme = "https"
		}
		host := ip
		if g.Host != "" {
			host = g.Host
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		addr := net.JoinHostPort(host, strconv.Itoa(port))
		client := &http.Client{Transport: &http.Transport{
			DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return p.network.Dial(ctx, addr) },
			TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // the kubelet does not verify probe certificates either
			DisableKeepAlives: true,
		}}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+addr+path, nil)
		if err != nil {
			return err
		}
		for _, h := range g.HTTPHeaders {
			req.Header.Add(h.Name, h.Value)
		}
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return fmt.Errorf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return nil
	case r != nil && r.TCPSocket != nil:
		port, err := containerPort(c, r.TCPSocket.Port)
		if err != nil {
			return err
		}
		conn, err := p.network.Dial(ctx, net.JoinHostPort(ip, strconv.Itoa(port)))
		if err != nil {
			return err
		}
		return conn.Close()
	default:
		// No probe the lab can run: ready once the process serves one of its ports.
		for _, cp := range c.Ports {
			if conn, err := p.network.Dial(ctx, net.JoinHostPort(ip, strconv.Itoa(int(cp.ContainerPort)))); err == nil {
				return conn.Close()
			}
		}
		if len(c.Ports) == 0 {
			return nil
		}
		return fmt.Errorf("no port of the container answers")
	}
}

// containerPort resolves a probe's port: a number, or the name of one of c's ports.
func containerPort(c corev1.Container, port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, cp := range c.Ports {
		if cp.Name == port.StrVal {
			return int(cp.ContainerPort), nil
		}
	}
	return 0, fmt.Errorf("port %q: no container port of that name", port.StrVal)
}
