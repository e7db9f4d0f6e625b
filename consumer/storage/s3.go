package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// s3Store keeps objects in an S3 bucket under an optional key prefix.
//
// PutObject is atomic on S3: readers see the old or the new object. Every
// Put sends Content-Type (derived from the key's extension when empty) and,
// if configured, Cache-Control and a canned ACL.
type s3Store struct {
	client       *s3.Client
	bucket       string
	prefix       string // "" or "some/prefix/"
	cacheControl string
	acl          string
	log          *slog.Logger
}

func openS3(ctx context.Context, u *url.URL, o options) (Store, error) {
	bucket := u.Host
	if bucket == "" {
		return nil, fmt.Errorf("storage open %s: missing bucket (s3://bucket[/prefix])", u.Redacted())
	}
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		if len(prefix) > 1024-MaxKeyLen-1 {
			return nil, fmt.Errorf("storage open %s: prefix too long", u.Redacted())
		}
		for _, seg := range strings.Split(prefix, "/") {
			if p := segmentProblem(seg); p != "" {
				return nil, fmt.Errorf("storage open %s: prefix: %s", u.Redacted(), p)
			}
		}
		prefix += "/"
	}

	loadOpts := []func(*config.LoadOptions) error{
		config.WithRequestChecksumCalculation(aws.RequestChecksumCalculationWhenRequired),
		config.WithResponseChecksumValidation(aws.ResponseChecksumValidationWhenRequired),
	}
	if o.region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.region))
	}
	if o.accessKey != "" || o.secret != "" {
		loadOpts = append(loadOpts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(o.accessKey, o.secret, "")))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("storage open %s: load AWS config: %w", u.Redacted(), err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.endpoint != "" {
			so.BaseEndpoint = aws.String(o.endpoint)
		}
		so.UsePathStyle = o.pathStyle
	})
	log := o.logger.With("store", "s3", "bucket", bucket, "prefix", prefix)
	return &store{b: &s3Store{
		client:       client,
		bucket:       bucket,
		prefix:       prefix,
		cacheControl: o.cacheControl,
		acl:          o.acl,
		log:          log,
	}, log: log}, nil
}

// mapS3Error turns "no such key" answers into ErrNotFound, keeping the
// original error in the message.
func mapS3Error(err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	if errors.As(err, &nsk) || errors.As(err, &nf) {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		case "NoSuchBucket":
			return err // misconfiguration, not a missing object
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotFound {
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	}
	return err
}

func (s *s3Store) put(ctx context.Context, key string, data []byte, contentType string) error {
	if contentType == "" {
		contentType = mime.TypeByExtension(path.Ext(key))
		if contentType == "" {
			contentType = "application/octet-stream"
		}
	}
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(s.prefix + key),
		Body:          bytes.NewReader(data), // seekable: required over plain http
		ContentLength: aws.Int64(int64(len(data))),
		ContentType:   aws.String(contentType),
	}
	if s.cacheControl != "" {
		in.CacheControl = aws.String(s.cacheControl)
	}
	if s.acl != "" {
		in.ACL = types.ObjectCannedACL(s.acl)
	}
	_, err := s.client.PutObject(ctx, in)
	return err
}

// putAll uploads the files one after the other, the last one last: S3
// acknowledges a PutObject only once the object is durable. (Uploading all
// but the last concurrently was measured slower under load: concurrent jobs
// already keep the server busy.)
func (s *s3Store) putAll(ctx context.Context, files []File) error {
	for _, f := range files {
		if err := s.put(ctx, f.Key, f.Data, f.ContentType); err != nil {
			return wrap("put", f.Key, err)
		}
	}
	return nil
}

func (s *s3Store) get(ctx context.Context, key string) ([]byte, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil {
		return nil, mapS3Error(err)
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func (s *s3Store) delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil && errors.Is(mapS3Error(err), ErrNotFound) {
		return nil // already gone: deleting is idempotent
	}
	return err
}

func (s *s3Store) list(ctx context.Context, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.prefix + prefix),
	})
	keys := []string{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, obj := range page.Contents {
			k, ok := strings.CutPrefix(aws.ToString(obj.Key), s.prefix)
			if !ok || CheckKey(k) != nil {
				// Not ours (written by something else): never hand out a
				// key that Get or Delete would refuse.
				s.log.DebugContext(ctx, "storage list: skipping object with invalid key", "key", aws.ToString(obj.Key))
				continue
			}
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys, nil
}
