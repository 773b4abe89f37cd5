package stream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3ClientOptions says how to reach S3. The zero value is what the AWS CLI
// does with no flags: the standard credential chain (environment, shared
// files and profile, SSO, web identity, container and instance roles), the
// region from the environment or profile, and the endpoint from
// AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL when set.
type S3ClientOptions struct {
	// Endpoint is a custom endpoint URL (an S3-compatible server, a VPC
	// endpoint). Empty: AWS_ENDPOINT_URL_S3, then AWS_ENDPOINT_URL (both
	// ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true), then AWS's own.
	Endpoint string
	// Region overrides the configured region. With no region configured
	// anywhere, "us-east-1" is used.
	Region string
	// Profile selects a shared-config profile (like AWS_PROFILE).
	Profile string
	// AddressingStyle is "path", "virtual" or "" (auto: path-style when a
	// custom endpoint is in use, virtual-hosted otherwise), like the CLI's
	// s3.addressing_style.
	AddressingStyle string
	// Credentials, when set, replaces the standard credential chain.
	Credentials aws.CredentialsProvider
	// MaxAttempts bounds the SDK's own attempts per request (0: the SDK's
	// default, 3).
	MaxAttempts int
	// HTTPClient, when set, carries every request (a custom CA bundle is
	// then its business). Nil: see NewS3Client.
	HTTPClient *http.Client
}

// S3Endpoint returns the custom endpoint opt resolves to ("" for AWS's
// own), as NewS3Client uses it.
func (opt S3ClientOptions) S3Endpoint() string {
	if opt.Endpoint != "" {
		return opt.Endpoint
	}
	if strings.EqualFold(os.Getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		return ""
	}
	for _, k := range []string{"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// NewS3Client returns an S3 client configured by opt (see S3ClientOptions).
// Credentials are resolved lazily, at the first request. Unless
// opt.HTTPClient is set, the client has its own connection pool (with the
// CA bundle of AWS_CA_BUNDLE or the profile, 10 s to connect, 60 s to the
// response headers, redirects not followed), which CloseIdleConnections
// releases.
func NewS3Client(ctx context.Context, opt S3ClientOptions) (*s3.Client, error) {
	style := strings.ToLower(opt.AddressingStyle)
	switch style {
	case "", "auto", "path", "virtual":
	default:
		return nil, fmt.Errorf("stream: s3 addressing style %q: want path, virtual or auto", opt.AddressingStyle)
	}
	endpoint := opt.S3Endpoint()
	if endpoint != "" && !strings.HasPrefix(endpoint, "http://") && !strings.HasPrefix(endpoint, "https://") {
		return nil, fmt.Errorf("stream: s3 endpoint %q: want an http:// or https:// URL", endpoint)
	}
	var loads []func(*config.LoadOptions) error
	if opt.Region != "" {
		loads = append(loads, config.WithRegion(opt.Region))
	}
	if opt.Profile != "" {
		loads = append(loads, config.WithSharedConfigProfile(opt.Profile))
	}
	if opt.Credentials != nil {
		loads = append(loads, config.WithCredentialsProvider(opt.Credentials))
	}
	if opt.MaxAttempts > 0 {
		loads = append(loads, config.WithRetryMaxAttempts(opt.MaxAttempts))
	}
	cfg, err := config.LoadDefaultConfig(ctx, loads...)
	if err != nil {
		return nil, fmt.Errorf("stream: s3 config: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if opt.HTTPClient != nil {
		cfg.HTTPClient = opt.HTTPClient
	} else {
		// The SDK's client cannot release its idle connections; take its
		// transport (which holds a custom CA bundle, if any) into ours.
		var tr *http.Transport
		if bc, ok := cfg.HTTPClient.(*awshttp.BuildableClient); ok {
			tr = bc.GetTransport()
		} else {
			tr = http.DefaultTransport.(*http.Transport).Clone()
		}
		tr.DialContext = (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext
		tr.ResponseHeaderTimeout = 60 * time.Second
		tr.MaxIdleConnsPerHost = 32
		cfg.HTTPClient = &http.Client{Transport: tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = style == "path" || (endpoint != "" && style != "virtual")
	}), nil
}

// CloseIdleConnections closes the idle connections of c's HTTP client when
// it can (clients from NewS3Client can), so that no connection goroutine
// outlives the client's user.
func CloseIdleConnections(c *s3.Client) {
	if ci, ok := c.Options().HTTPClient.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// S3Opener returns the open function for ListS3's files: it GETs the
// object f.Path from bucket. Give it to DecodeFiles, whose workers then
// fetch and decode in parallel. The request is not cancelled by DecodeFiles'
// context; a stalled server is bounded by the client's timeouts.
func S3Opener(client *s3.Client, bucket string) func(File) (io.ReadCloser, error) {
	return func(f File) (io.ReadCloser, error) {
		out, err := client.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(f.Path)})
		if err != nil {
			return nil, fmt.Errorf("stream: get s3://%s/%s: %w", bucket, f.Path, err)
		}
		return out.Body, nil
	}
}

// ListS3 is ListDir for s3://bucket/prefix: the same File values (Path is
// the object key, Size its size), in the same order (SortFiles), with the
// same skip reasons. prefix is a folder ("" for the whole bucket; a final
// "/" is implied) or, when nothing lies under it, one object, returned
// whatever its name.
//
// It never lists the bucket flat. It walks the layout one level at a time
// with Delimiter "/" listings — AWSLogs/, organisation IDs, accounts,
// CloudTrail/, regions — and then reads only the date folders that from/to
// need: with both bounds set and at most 62 days apart it lists each day
// folder …/CloudTrail/<region>/YYYY/MM/DD/ directly; otherwise it lists
// years, months and days and skips those outside the bounds. Folders beside
// CloudTrail/ under an account (CloudTrail-Digest, CloudTrail-Insight,
// Config, vpcflowlogs, …) and folders beside AWSLogs/ are not listed: each
// counts once in skipped, under its type name or SkipOutside (ListDir counts
// their files one by one); hidden folders count once as SkipHidden, as in
// ListDir. SkipOutOfRange counts only the files of the day folders listed.
// Outside an AWSLogs/ tree (a prefix of loose JSON files), every folder is
// walked. Up to 16 listings run at once.
func ListS3(ctx context.Context, client *s3.Client, bucket, prefix string, from, to time.Time) ([]File, map[string]int, error) {
	return listS3(ctx, client, bucket, prefix, from, to, false)
}

// listS3 is ListS3; with modified, Files carry their objects' LastModified.
func listS3(ctx context.Context, client *s3.Client, bucket, prefix string, from, to time.Time, modified bool) ([]File, map[string]int, error) {
	prefix = strings.TrimLeft(prefix, "/")
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	l := &s3Lister{client: client, bucket: bucket, from: from, to: to, modified: modified, skipped: map[string]int{},
		sem: make(chan struct{}, 16)}
	if !from.IsZero() {
		l.lo = from.UTC().Truncate(24 * time.Hour)
	}
	if !to.IsZero() {
		l.hi = to.UTC().Add(24*time.Hour - time.Nanosecond).Truncate(24 * time.Hour)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	l.cancel = cancel
	l.visit(ctx, prefix)
	l.wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return nil, nil, err
	}
	files := l.files
	if len(files) == 0 && len(l.skipped) == 0 && prefix != "" {
		// Nothing under prefix/: prefix may name one object, which is
		// then read whatever its name, as ListDir reads a single file.
		key := strings.TrimSuffix(prefix, "/")
		head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err == nil {
			f, _ := ClassifyKey(key)
			f.Size = aws.ToInt64(head.ContentLength)
			return []File{f}, l.skipped, nil
		}
		var nf *types.NotFound
		if !errors.As(err, &nf) {
			return nil, nil, fmt.Errorf("stream: head s3://%s/%s: %w", bucket, key, err)
		}
	}
	// As in ListDir: files beside an AWSLogs/ tree are not part of it.
	inTree := func(f File) bool { return strings.Contains("/"+f.Path+"/", "/AWSLogs/") }
	if slices.ContainsFunc(files, inTree) {
		kept := files[:0]
		for _, f := range files {
			if inTree(f) {
				kept = append(kept, f)
			} else {
				l.skipped[SkipOutside]++
			}
		}
		files = kept
	}
	SortFiles(files)
	return files, l.skipped, nil
}

type s3Lister struct {
	client   *s3.Client
	bucket   string
	from, to time.Time
	lo, hi   time.Time // day bounds, zero = unbounded
	modified bool      // set File.Modified
	sem      chan struct{}
	wg       sync.WaitGroup
	cancel   context.CancelCauseFunc

	mu      sync.Mutex
	files   []File
	skipped map[string]int
}

// visit lists the folder p (a prefix ending in "/", or "") in a new
// goroutine and acts on what it holds according to where p is in the
// layout.
func (l *s3Lister) visit(ctx context.Context, p string) {
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		select {
		case l.sem <- struct{}{}:
		case <-ctx.Done():
			return
		}
		keys, sizes, mods, dirs, err := l.list(ctx, p)
		<-l.sem
		if err != nil {
			l.cancel(err)
			return
		}
		l.handle(ctx, p, keys, sizes, mods, dirs)
	}()
}

// list returns the objects directly in folder p and its sub-folders
// (full prefixes ending in "/").
func (l *s3Lister) list(ctx context.Context, p string) (keys []string, sizes []int64, mods []time.Time, dirs []string, err error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(l.bucket), Delimiter: aws.String("/")}
	if p != "" {
		in.Prefix = aws.String(p)
	}
	pg := s3.NewListObjectsV2Paginator(l.client, in)
	for pg.HasMorePages() {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return nil, nil, nil, nil, fmt.Errorf("stream: list s3://%s/%s: %w", l.bucket, p, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
			sizes = append(sizes, aws.ToInt64(o.Size))
			mods = append(mods, aws.ToTime(o.LastModified))
		}
		for _, cp := range out.CommonPrefixes {
			dirs = append(dirs, aws.ToString(cp.Prefix))
		}
	}
	return keys, sizes, mods, dirs, nil
}

// layoutDepth returns how deep p lies below its last AWSLogs/ folder
// (organisation IDs not counted): 0 for AWSLogs/ or AWSLogs/<o-id>/, 1 for
// an account, 2 for its type folder, 3 for a region, 4 a year, 5 a month,
// 6 a day; -1 when p is not under AWSLogs/.
func layoutDepth(p string) int {
	segs := strings.Split(strings.TrimSuffix(p, "/"), "/")
	i := lastIndex(segs, "AWSLogs")
	if i < 0 {
		return -1
	}
	rest := segs[i+1:]
	if len(rest) > 0 && strings.HasPrefix(rest[0], "o-") {
		rest = rest[1:]
	}
	return len(rest)
}

func (l *s3Lister) handle(ctx context.Context, p string, keys []string, sizes []int64, mods []time.Time, dirs []string) {
	l.mu.Lock()
	for i, k := range keys {
		f, reason := ClassifyKey(k)
		switch {
		case reason != "":
			l.skipped[reason]++
		case !f.inRange(l.from, l.to):
			l.skipped[SkipOutOfRange]++
		default:
			f.Size = sizes[i]
			if l.modified {
				f.Modified = mods[i]
			}
			l.files = append(l.files, f)
		}
	}
	l.mu.Unlock()

	depth := layoutDepth(p)
	besideTree := depth < 0 && slices.Contains(dirs, p+"AWSLogs/")
	var follow []string
	l.mu.Lock()
	for _, d := range dirs {
		name := strings.TrimSuffix(d[len(p):], "/")
		switch {
		case isHidden(name):
			l.skipped[SkipHidden]++
		case besideTree && name != "AWSLogs":
			l.skipped[SkipOutside]++ // beside AWSLogs/: not listed
		case depth == 1 && name != "CloudTrail":
			l.skipped[name]++ // CloudTrail-Digest, Config, …: not listed
		case depth >= 3 && depth <= 5:
			if l.dateWanted(d, depth+1) {
				follow = append(follow, d)
			}
		default:
			follow = append(follow, d)
		}
	}
	l.mu.Unlock()
	// A region folder with both bounds close together: list the day folders
	// directly rather than the years and months.
	if depth == 2 && l.daysDirect() {
		for _, d := range dirs {
			if isHidden(strings.TrimSuffix(d[len(p):], "/")) {
				continue
			}
			for day := l.lo; !day.After(l.hi); day = day.AddDate(0, 0, 1) {
				l.visit(ctx, d+day.Format("2006/01/02/"))
			}
		}
		return
	}
	for _, d := range follow {
		l.visit(ctx, d)
	}
}

// daysDirect reports whether day folders are listed directly: both bounds
// set and at most 62 days.
func (l *s3Lister) daysDirect() bool {
	return !l.lo.IsZero() && !l.hi.IsZero() && !l.hi.Before(l.lo) && l.hi.Sub(l.lo) <= 62*24*time.Hour
}

// dateWanted reports whether the date folder d (a year at depth 4, a month
// at 5, a day at 6) may hold days within the bounds.
func (l *s3Lister) dateWanted(d string, depth int) bool {
	return dateFolderWanted(d, depth, l.lo, l.hi)
}

// dateFolderWanted reports whether the date folder d (a year at depth 4, a
// month at 5, a day at 6, see layoutDepth) may hold days within [lo, hi]
// (zero: unbounded). Folders whose names are not dates are wanted
// (ClassifyKey reads what they hold).
func dateFolderWanted(d string, depth int, lo, hi time.Time) bool {
	if lo.IsZero() && hi.IsZero() {
		return true
	}
	segs := strings.Split(strings.TrimSuffix(d, "/"), "/")
	n := depth - 3 // date segments at the end: 1 year, 2 year/month, 3 year/month/day
	if n < 1 || n > 3 || len(segs) < n {
		return true
	}
	ymd := [3]int{}
	for i, s := range segs[len(segs)-n:] {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			return true
		}
		ymd[i] = v
	}
	// The first and last day the folder can hold.
	var first, last time.Time
	switch n {
	case 1:
		first = time.Date(ymd[0], 1, 1, 0, 0, 0, 0, time.UTC)
		last = time.Date(ymd[0], 12, 31, 0, 0, 0, 0, time.UTC)
	case 2:
		if ymd[1] < 1 || ymd[1] > 12 {
			return true
		}
		first = time.Date(ymd[0], time.Month(ymd[1]), 1, 0, 0, 0, 0, time.UTC)
		last = first.AddDate(0, 1, -1)
	default:
		if ymd[1] < 1 || ymd[1] > 12 || ymd[2] < 1 || ymd[2] > 31 {
			return true
		}
		first = time.Date(ymd[0], time.Month(ymd[1]), ymd[2], 0, 0, 0, 0, time.UTC)
		last = first
	}
	if !lo.IsZero() && last.Before(lo) {
		return false
	}
	return hi.IsZero() || !first.After(hi)
}

// ParseS3URL splits s3://bucket/prefix into the bucket and the prefix (no
// leading or trailing "/"; "" for the whole bucket).
func ParseS3URL(s string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("stream: %q: not an s3:// URL", s)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	if !validBucket(bucket) {
		return "", "", fmt.Errorf("stream: %q: bucket %q is not a valid S3 bucket name", s, bucket)
	}
	prefix = strings.Trim(prefix, "/")
	if strings.Contains(prefix, "//") {
		return "", "", fmt.Errorf("stream: %q: empty folder name in the prefix", s)
	}
	for _, seg := range strings.Split(prefix, "/") {
		if seg == "." || seg == ".." {
			return "", "", fmt.Errorf("stream: %q: %q in the prefix", s, seg)
		}
	}
	return bucket, prefix, nil
}

// validBucket checks the general-purpose bucket naming rules: 3–63
// characters of a-z 0-9 . -, starting and ending with a letter or digit.
func validBucket(b string) bool {
	if len(b) < 3 || len(b) > 63 {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		alnum := c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
		if !alnum && c != '.' && c != '-' || (i == 0 || i == len(b)-1) && !alnum {
			return false
		}
	}
	return !strings.Contains(b, "..")
}
