package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os/exec"
	"strings"
)

// KindNetwork is the docker network kind attaches every node to.
const KindNetwork = "kind"

// HostAddress returns the IPv4 gateway of the docker network "kind": the
// address at which nodes and pods reach servers on the host. The network
// exists once any kind cluster has been created.
func HostAddress(ctx context.Context) (string, error) {
	cmd := exec.CommandContext(ctx, "docker", "network", "inspect", KindNetwork)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(stderr.String())
		if strings.Contains(strings.ToLower(msg), "no such network") || strings.Contains(msg, "not found") {
			return "", fmt.Errorf("docker network %q does not exist: create a kind cluster first", KindNetwork)
		}
		return "", fmt.Errorf("inspecting docker network %q: %w: %s", KindNetwork, err, msg)
	}
	return gatewayFromInspect(stdout.Bytes())
}

type networkInspect struct {
	Name string
	IPAM struct {
		Config []struct {
			Subnet  string
			Gateway string
		}
	}
}

// gatewayFromInspect picks the IPv4 gateway from `docker network inspect`
// output. Docker may leave Gateway empty when the network was created with
// a subnet but no gateway; it then uses the subnet's first address.
func gatewayFromInspect(raw []byte) (string, error) {
	var nets []networkInspect
	if err := json.Unmarshal(raw, &nets); err != nil {
		return "", fmt.Errorf("parsing docker network inspect output: %w", err)
	}
	if len(nets) == 0 {
		return "", fmt.Errorf("docker network %q does not exist: create a kind cluster first", KindNetwork)
	}
	for _, cfg := range nets[0].IPAM.Config {
		if gw, err := netip.ParseAddr(cfg.Gateway); err == nil && gw.Is4() {
			return gw.String(), nil
		}
		if prefix, err := netip.ParsePrefix(cfg.Subnet); err == nil && prefix.Addr().Is4() && cfg.Gateway == "" {
			return prefix.Masked().Addr().Next().String(), nil
		}
	}
	return "", fmt.Errorf("docker network %q has no IPv4 subnet", nets[0].Name)
}
