package consumer

import (
	"context"
	"strings"
	"time"

	"github.com/certd-dev/certd/consumer/document"
	"github.com/certd-dev/certd/consumer/storage"
	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// StageObserver receives how long one stage of a job took: "render",
// "sign" or "store" (internal/metrics implements it).
type StageObserver func(stage string, d time.Duration)

// ObserveStages returns cfg with its renderer, signer and store timed into
// obs. It wraps them rather than changing the handler, so what they do is
// unchanged: the store keeps one PutAll per certificate.
func ObserveStages(cfg HandlerConfig, obs StageObserver) HandlerConfig {
	if obs == nil {
		return cfg
	}
	if cfg.Renderer != nil {
		cfg.Renderer = &observedRenderer{cfg.Renderer, obs}
	}
	if cfg.Signer != nil {
		cfg.Signer = &observedSigner{cfg.Signer, obs}
	}
	if cfg.Store != nil {
		cfg.Store = &observedStore{cfg.Store, obs}
	}
	return cfg
}

type observedRenderer struct {
	Renderer
	obs StageObserver
}

func (o *observedRenderer) Render(design string, f document.Fields) ([]byte, error) {
	defer since(o.obs, "render", time.Now())
	return o.Renderer.Render(design, f)
}

type observedSigner struct {
	Signer
	obs StageObserver
}

func (o *observedSigner) Sign(data []byte) ([]byte, error) {
	defer since(o.obs, "sign", time.Now())
	return o.Signer.Sign(data)
}

type observedStore struct {
	Store
	obs StageObserver
}

// PutAll keeps the wrapped store's group commit (storage.PutAll).
func (o *observedStore) PutAll(ctx context.Context, files []storage.File) error {
	defer since(o.obs, "store", time.Now())
	return storage.PutAll(ctx, o.Store, files)
}

func since(obs StageObserver, stage string, t0 time.Time) { obs(stage, time.Since(t0)) }

// JobMetrics counts finished jobs. A Consumer given WithMetrics a value
// that also implements it (internal/metrics does) reports to it.
type JobMetrics interface {
	JobDone(action, source, outcome string)
	Retry(action string)
	Dead(action string)
}

// jobMetrics is the consumer's JobMetrics, or one that records nothing.
func (c *Consumer) jobMetrics() JobMetrics {
	if m, ok := c.metrics.(JobMetrics); ok {
		return m
	}
	return noJobMetrics{}
}

type noJobMetrics struct{}

func (noJobMetrics) JobDone(string, string, string) {}
func (noJobMetrics) Retry(string)                   {}
func (noJobMetrics) Dead(string)                    {}

// jobLabels are the metric labels of an action and source: "create",
// "xqueue" and so on.
func jobLabels(a certdv1.Action, s certdv1.Source) (action, source string) {
	return actionLabel(a), strings.ToLower(strings.TrimPrefix(s.String(), "SOURCE_"))
}

func actionLabel(a certdv1.Action) string {
	return strings.ToLower(strings.TrimPrefix(a.String(), "ACTION_"))
}
