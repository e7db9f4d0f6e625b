package main

import (
	"errors"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/certd-dev/certd/internal/webserve"
)

// newWeb is the HTTP part of all and demo: health, and with file storage
// the certificates under root. It is healthy while NATS is connected.
func newWeb(root string, nc *nats.Conn, log *slog.Logger) *webserve.Server {
	return webserve.New(webserve.Config{Root: root, Logger: log, Healthy: func() error {
		if !nc.IsConnected() {
			return errors.New("NATS not connected")
		}
		return nil
	}})
}
