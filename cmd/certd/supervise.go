package main

import (
	"context"
	"errors"
	"log/slog"

	"github.com/certd-dev/certd/internal/supervise"
)

// supervised logs the line naming the part that stopped the process.
func supervised(err error, log *slog.Logger) error {
	var s *supervise.Stopped
	if errors.As(err, &s) {
		log.Error("a part stopped; stopping the process", "part", s.Part, "err", s.Err)
	}
	return err
}

// runPart runs a command's single part under supervision, with its HTTP
// side (health, readiness, metrics, pprof).
func runPart(ctx context.Context, name string, log *slog.Logger, f func(context.Context) error, obs *observer) error {
	g := supervise.New(ctx)
	g.Add(name, f)
	obs.serve(g, log, "", 0)
	return supervised(g.Run(), log)
}
