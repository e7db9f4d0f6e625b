package control

import (
	"context"
	"strings"

	certdv1 "github.com/certd-dev/certd/proto/certd/v1"
)

// ListJobs lists the job records that match the filter, newest first (by
// creation time, then id). Page tokens name the last job returned, so jobs
// created between two calls do not shift later pages; a token is only
// valid with the filter it was made for. Total counts every match.
func (s *Service) ListJobs(ctx context.Context, req *certdv1.ListJobsRequest) (_ *certdv1.ListJobsResponse, err error) {
	f, err := newFilter(req.GetFilter())
	if err != nil {
		return nil, err
	}
	size := int(req.GetPageSize())
	switch {
	case size < 0:
		return nil, invalid("page_size must not be negative")
	case size == 0:
		size = DefaultPageSize
	case size > MaxPageSize:
		size = MaxPageSize
	}
	fh := filterHash(req.GetFilter())
	var tok pageToken
	hasTok := req.GetPageToken() != ""
	if hasTok {
		var ok bool
		if tok, ok = decodeToken(req.GetPageToken()); !ok {
			return nil, invalid("page_token is not a token this service issued")
		}
		if tok.filter != fh {
			return nil, invalid("page_token was issued for a different filter")
		}
	}
	var matched []*certdv1.JobRecord
	err = s.p.Records.Scan(ctx, func(r *certdv1.JobRecord) bool {
		if f.match(r) {
			matched = append(matched, r)
		}
		return true
	})
	if err != nil {
		return nil, s.grpcError("list jobs", err)
	}
	sortNewestFirst(matched)
	resp := &certdv1.ListJobsResponse{Total: int64(len(matched))}
	start := 0
	if hasTok {
		for start < len(matched) && !tok.after(matched[start]) {
			start++
		}
	}
	end := min(start+size, len(matched))
	resp.Jobs = matched[start:end]
	forDisplay(resp.Jobs...)
	if end < len(matched) && end > start {
		last := matched[end-1]
		resp.NextPageToken = pageToken{created: last.CreatedAt.AsTime().UnixNano(), id: last.Id, filter: fh}.encode()
	}
	return resp, nil
}

// GetJob returns one whole job record.
func (s *Service) GetJob(ctx context.Context, req *certdv1.GetJobRequest) (_ *certdv1.GetJobResponse, err error) {
	id := strings.TrimSpace(req.GetId())
	if id == "" {
		return nil, invalid("id is required")
	}
	if !validID(id) {
		return nil, invalid("id %q is not a job id", clip(id, 80))
	}
	rec, err := s.p.Records.Get(ctx, id)
	if err != nil {
		return nil, s.grpcError("get job", err)
	}
	forDisplay(rec)
	return &certdv1.GetJobResponse{Job: rec}, nil
}

// validID reports whether id can be a job id (a KV key): job ids are
// "xq-<digits>" or "sub-<hex>", but any KV-safe key is looked up.
func validID(id string) bool {
	if len(id) > 200 {
		return false
	}
	for _, c := range []byte(id) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return !strings.HasPrefix(id, ".") && !strings.HasSuffix(id, ".")
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
