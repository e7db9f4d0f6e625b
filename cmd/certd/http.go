package main

import (
	"errors"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/internal/webserve"
)

// newWeb is the HTTP part of all and demo: health, and with file storage
// the certificates under root, revocation lists with max-age statusMaxAge.
// It is healthy while NATS is connected.
func newWeb(root string, statusMaxAge time.Duration, nc *nats.Conn, log *slog.Logger) *webserve.Server {
	return webserve.New(webserve.Config{Root: root, Logger: log, StatusMaxAge: statusMaxAge, Healthy: func() error {
		if !nc.IsConnected() {
			return errors.New("NATS not connected")
		}
		return nil
	}})
}
