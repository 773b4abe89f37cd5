package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/trailsight/trailsight/detector"
	"github.com/trailsight/trailsight/stream"
)

// S3Options configures an S3 notifier. Bucket is required.
type S3Options struct {
	// Bucket and Prefix say where: s3://Bucket/Prefix/AWSLogs/…
	// (ParseS3URL splits such a URL). Prefix, like a trail's S3 key prefix,
	// must be a clean relative path.
	Bucket, Prefix string
	// OrgID and StrictAWS are as in FolderOptions.
	OrgID     string
	StrictAWS bool
	// KMSKeyID, when set, encrypts each object with SSE-KMS under this key
	// (ID, ARN or alias ARN); otherwise the bucket's default encryption
	// applies.
	KMSKeyID string
	// Client says how to reach S3: endpoint (default from
	// AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), region, profile, addressing
	// style, credentials (default: the standard chain).
	Client stream.S3ClientOptions
}

// S3 writes the same objects that Folder writes files — the same keys
// under s3://Bucket/Prefix, the same gzip'd bytes (see Folder) — so a
// re-run puts the same objects again rather than new ones. Objects are
// written as AWS delivers CloudTrail files: Content-Type application/json,
// no Content-Encoding (the .gz is the object itself). Each PutObject is
// atomic.
//
// Notify stops at the first object it cannot write and returns an error
// naming it; re-sending the same insights is safe. Errors that retrying
// cannot fix — access denied, no such bucket, a bad KMS key, any other 4xx
// but 408 and 429 — are reported by S3Permanent; 5xx, throttling, timeouts
// and connection failures are not (the SDK has already retried them a few
// times). Keys and Written may be called concurrently with Notify.
type S3 struct {
	client *s3.Client
	bucket string
	layout FolderOptions
	kms    string
	tally
}

// NewS3 returns an S3 notifier. It checks the options but does not reach
// S3: a missing bucket or bad credentials show at the first Notify.
func NewS3(ctx context.Context, opt S3Options) (*S3, error) {
	if opt.Bucket == "" || strings.Contains(opt.Bucket, "/") {
		return nil, fmt.Errorf("notify: s3 bucket %q: want a bucket name", opt.Bucket)
	}
	if _, _, err := stream.ParseS3URL("s3://" + opt.Bucket); err != nil {
		return nil, fmt.Errorf("notify: s3: %w", err)
	}
	layout, err := FolderOptions{Prefix: opt.Prefix, OrgID: opt.OrgID, StrictAWS: opt.StrictAWS}.clean("s3")
	if err != nil {
		return nil, err
	}
	client, err := stream.NewS3Client(ctx, opt.Client)
	if err != nil {
		return nil, fmt.Errorf("notify: s3: %w", err)
	}
	return &S3{client: client, bucket: opt.Bucket, layout: layout, kms: opt.KMSKeyID}, nil
}

// ParseS3URL splits s3://bucket/prefix into S3Options' Bucket and Prefix;
// it is stream.ParseS3URL.
func ParseS3URL(s string) (bucket, prefix string, err error) { return stream.ParseS3URL(s) }

// Notify writes ins as described on S3. Insights whose account or region
// cannot be part of a key are not written and are reported in the returned
// error; the others are written.
// Notify delivers ins. Errors that retrying cannot fix (S3Permanent) are
// marked with ErrPermanent, so that Reliable spools them at once.
func (s *S3) Notify(ctx context.Context, ins []detector.Insight) error {
	err := s.notify(ctx, ins)
	if err != nil && S3Permanent(err) {
		return Permanent(err)
	}
	return err
}

func (s *S3) notify(ctx context.Context, ins []detector.Insight) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if s.isClosed() {
		return ErrClosed
	}
	files, errs := folderFiles(ins, s.layout)
	for i, fl := range files {
		if err := s.put(ctx, fl); err != nil {
			if left := len(files) - i - 1; left > 0 {
				err = fmt.Errorf("%w (%d more objects not written)", err, left)
			}
			return errors.Join(append(errs, err)...)
		}
		s.wrote(fl.key, fl.n)
	}
	return errors.Join(errs...)
}

func (s *S3) put(ctx context.Context, fl folderFile) error {
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.bucket),
		Key:           aws.String(fl.key),
		Body:          bytes.NewReader(fl.body),
		ContentLength: aws.Int64(int64(len(fl.body))),
		ContentType:   aws.String("application/json"),
	}
	if s.kms != "" {
		in.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		in.SSEKMSKeyId = aws.String(s.kms)
	}
	_, err := s.client.PutObject(ctx, in)
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && !errors.Is(err, cerr) {
		err = fmt.Errorf("%w: %w", cerr, err)
	}
	if S3Permanent(err) {
		return fmt.Errorf("notify: s3: put s3://%s/%s (permanent): %w", s.bucket, fl.key, err)
	}
	return fmt.Errorf("notify: s3: put s3://%s/%s: %w", s.bucket, fl.key, err)
}

// S3Permanent reports whether err, from S3, is one that retrying cannot
// fix: an S3 error code such as AccessDenied, NoSuchBucket,
// InvalidAccessKeyId, SignatureDoesNotMatch or a KMS error, or an HTTP
// status 4xx other than 408 and 429. Cancellation, timeouts, connection
// failures, throttling and 5xx are not permanent.
func S3Permanent(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch code := ae.ErrorCode(); {
		case code == "SlowDown", code == "RequestTimeout", code == "InternalError", code == "ServiceUnavailable",
			code == "RequestTimeTooSkewed", code == "Throttling", code == "ThrottlingException":
			return false
		case code == "AccessDenied", code == "NoSuchBucket", code == "InvalidAccessKeyId", code == "SignatureDoesNotMatch",
			code == "AllAccessDisabled", code == "InvalidBucketName", code == "AuthorizationHeaderMalformed",
			code == "PermanentRedirect", code == "InvalidArgument", code == "AccountProblem",
			strings.HasPrefix(code, "KMS."):
			return true
		}
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		c := re.HTTPStatusCode()
		return c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests
	}
	return false
}

// Close ends the notifier and releases its idle connections. Every object
// is complete when Notify returns, so there is nothing to flush.
func (s *S3) Close() error {
	s.close()
	stream.CloseIdleConnections(s.client)
	return nil
}
