package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/flux-fleet/flux-fleet/harness/fleetenv"
	"github.com/flux-fleet/flux-fleet/harness/probe"
)

// checkTraffic is the e2e suite's traffic check, minimal: in every
// environment, GET / through the ingress controller's Service with the
// environment's Ingress host answers 200 from a pod of the app.
func checkTraffic(ctx context.Context, r *fleetenv.Run, log io.Writer) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, env := range r.Options().Envs {
		e := r.Env(env)
		g.Go(func() error {
			start := time.Now()
			pod, err := getThroughIngress(ctx, e)
			if err != nil {
				return fmt.Errorf("%s: traffic check: %w", env, err)
			}
			fmt.Fprintf(log, "%s %-11s GET / through the ingress answered by pod %s in %s\n", time.Now().Format("15:04:05"), env, pod, time.Since(start).Round(time.Millisecond))
			return nil
		})
	}
	return g.Wait()
}

// getThroughIngress is probe's traffic check through the ingress: GET /
// with the environment's Ingress host, answered 200 by a pod of the app; it
// returns that pod (namespace/name).
func getThroughIngress(ctx context.Context, e *fleetenv.Environment) (string, error) {
	route, err := probe.OpenAppRoute(ctx, e.Clients, e.Name)
	if err != nil {
		return "", err
	}
	defer route.Close()
	answer, err := route.CheckApp(ctx)
	if err != nil {
		return "", err
	}
	return route.Namespace + "/" + answer.Hostname, nil
}
