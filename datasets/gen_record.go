package datasets

import (
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// This file turns a planned call into the bytes of a CloudTrail record.
// Every string written is ASCII without quotes or backslashes (the catalog
// is ours), so no JSON escaping is needed; a test decodes every record.

// identity is one principal of an account, pre-rendered.
type identity struct {
	head      string // userIdentity JSON up to the session creation date (or whole, if noDate)
	tail      string // userIdentity JSON after the creation date
	noDate    bool
	arn       string // userIdentity.arn, for error messages
	ip        string // sourceIPAddress
	ua        string // userAgent template ({svc}, {cmd})
	tls       bool   // tlsDetails present (calls from outside AWS's own services)
	console   bool   // sessionCredentialFromConsole
	invokedBy string
}

const hexDigits = "0123456789abcdef"
const upperAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// seg is a piece of a parsed template: a literal, then a token.
type seg struct {
	lit string
	tok string
}

func parseTemplate(s string) []seg {
	var out []seg
	for {
		i := strings.IndexByte(s, '{')
		j := -1
		if i >= 0 {
			j = strings.IndexByte(s[i:], '}')
		}
		if i < 0 || j < 0 || !isToken(s[i+1:i+j]) {
			if i >= 0 && j >= 0 { // a JSON brace, not a token
				out = append(out, seg{lit: s[:i+1]})
				s = s[i+1:]
				continue
			}
			out = append(out, seg{lit: s})
			return mergeLits(out)
		}
		out = append(out, seg{lit: s[:i], tok: s[i+1 : i+j]})
		s = s[i+j+1:]
	}
}

func isToken(t string) bool {
	switch t {
	case "hex8", "hex16", "upper16", "alnum6", "n2", "n3", "uuid", "acct", "region", "bucket":
		return true
	}
	return false
}

func mergeLits(in []seg) []seg {
	var out []seg
	for _, s := range in {
		if n := len(out); n > 0 && out[n-1].tok == "" {
			out[n-1].lit += s.lit
			out[n-1].tok = s.tok
			continue
		}
		out = append(out, s)
	}
	return out
}

// recCtx is what a record needs beyond the call itself.
type recCtx struct {
	acct, region, bucket string
	rng                  *rand.Rand
}

func appendTemplate(b []byte, t []seg, c *recCtx) []byte {
	for _, s := range t {
		b = append(b, s.lit...)
		switch s.tok {
		case "":
		case "hex8":
			b = appendRand(b, c.rng, hexDigits, 8)
		case "hex16":
			b = appendRand(b, c.rng, hexDigits, 16)
		case "upper16":
			b = appendRand(b, c.rng, upperAlnum, 16)
		case "alnum6":
			b = appendRand(b, c.rng, alnum, 6)
		case "n2":
			b = strconv.AppendInt(b, int64(1+c.rng.IntN(28)), 10)
		case "n3":
			b = strconv.AppendInt(b, int64(c.rng.IntN(1000)), 10)
		case "uuid":
			b = appendUUID(b, c.rng)
		case "acct":
			b = append(b, c.acct...)
		case "region":
			b = append(b, c.region...)
		case "bucket":
			b = append(b, c.bucket...)
		}
	}
	return b
}

func appendRand(b []byte, r *rand.Rand, alphabet string, n int) []byte {
	for range n {
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return b
}

// appendUUID appends a random (version 4) UUID drawn from r.
func appendUUID(b []byte, r *rand.Rand) []byte {
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^0xf000 | 0x4000           // version 4
	lo = lo&^(0xc000<<48) | 0x8000<<48 // variant 10
	var u [16]byte
	for i := range 8 {
		u[i] = byte(hi >> (56 - 8*i))
		u[8+i] = byte(lo >> (56 - 8*i))
	}
	for i, x := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[x>>4], hexDigits[x&15])
	}
	return b
}

// appendTime appends t as CloudTrail writes eventTime: 2026-03-02T09:15:04Z.
func appendTime(b []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(b, "2006-01-02T15:04:05Z")
}

// appendUA appends a user agent template, filling {svc} and {cmd}.
func appendUA(b []byte, ua string, a *api) []byte {
	for {
		i := strings.IndexByte(ua, '{')
		if i < 0 {
			return append(b, ua...)
		}
		b = append(b, ua[:i]...)
		ua = ua[i:]
		switch {
		case strings.HasPrefix(ua, "{svc}"):
			b = append(b, a.prefix...)
			ua = ua[5:]
		case strings.HasPrefix(ua, "{cmd}"):
			b = append(b, a.prefix...)
			b = append(b, '.')
			b = append(b, strings.ToLower(a.name[:1])...)
			b = append(b, a.name[1:]...)
			ua = ua[5:]
		default:
			b = append(b, '{')
			ua = ua[1:]
		}
	}
}

// appendErrorMessage appends the errorMessage of code for a call of a by id.
func appendErrorMessage(b []byte, code string, a *api, id *identity, c *recCtx) []byte {
	msg := errorMessages[code]
	for {
		i := strings.IndexByte(msg, '{')
		if i < 0 {
			return append(b, msg...)
		}
		b = append(b, msg[:i]...)
		msg = msg[i:]
		switch {
		case strings.HasPrefix(msg, "{arn}"):
			b = append(b, id.arn...)
			msg = msg[5:]
		case strings.HasPrefix(msg, "{action}"):
			b = append(b, a.prefix...)
			b = append(b, ':')
			b = append(b, actionName(a.name)...)
			msg = msg[8:]
		case strings.HasPrefix(msg, "{resource}"):
			b = appendResource(b, a, c)
			msg = msg[10:]
		default:
			b = append(b, '{')
			msg = msg[1:]
		}
	}
}

// actionName strips the API version suffix Lambda adds to eventName.
func actionName(name string) string {
	if i := strings.Index(name, "2015"); i > 0 {
		return name[:i]
	}
	return name
}

func appendResource(b []byte, a *api, c *recCtx) []byte {
	switch a.prefix {
	case "iam":
		return append(append(append(b, "arn:aws:iam::"...), c.acct...), ":role/*"...)
	case "s3":
		return append(append(b, "arn:aws:s3:::"...), c.bucket...)
	}
	b = append(b, "arn:aws:"...)
	b = append(b, a.prefix...)
	b = append(b, ':')
	b = append(b, c.region...)
	b = append(b, ':')
	b = append(b, c.acct...)
	return append(b, ":*"...)
}

// appendRecord appends one CloudTrail record. errCode is "" for success.
func appendRecord(b []byte, t time.Time, a *api, id *identity, errCode string, c *recCtx) []byte {
	b = append(b, `{"eventVersion":"`...)
	b = append(b, a.version...)
	b = append(b, `","userIdentity":`...)
	b = append(b, id.head...)
	if !id.noDate {
		b = appendTime(b, t.Add(-time.Duration(c.rng.IntN(3600))*time.Second).Truncate(time.Second))
		b = append(b, id.tail...)
	}
	b = append(b, `,"eventTime":"`...)
	b = appendTime(b, t)
	b = append(b, `","eventSource":"`...)
	b = append(b, a.source...)
	b = append(b, `","eventName":"`...)
	b = append(b, a.name...)
	b = append(b, `","awsRegion":"`...)
	b = append(b, c.region...)
	b = append(b, `","sourceIPAddress":"`...)
	b = append(b, id.ip...)
	b = append(b, `","userAgent":"`...)
	b = appendUA(b, id.ua, a)
	b = append(b, '"')
	if errCode != "" {
		b = append(b, `,"errorCode":"`...)
		b = append(b, errCode...)
		b = append(b, '"')
		if _, ok := errorMessages[errCode]; ok {
			b = append(b, `,"errorMessage":"`...)
			b = appendErrorMessage(b, errCode, a, id, c)
			b = append(b, '"')
		}
	}
	b = append(b, `,"requestParameters":`...)
	if p := templates[a].params; p != nil {
		b = appendTemplate(b, p, c)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"responseElements":`...)
	if r := templates[a].resp; r != nil && errCode == "" {
		b = appendTemplate(b, r, c)
	} else {
		b = append(b, "null"...)
	}
	if a.data {
		b = append(b, `,"additionalEventData":{"SignatureVersion":"SigV4","CipherSuite":"TLS_AES_128_GCM_SHA256","bytesTransferredIn":`...)
		b = strconv.AppendInt(b, int64(c.rng.IntN(40000)), 10)
		b = append(b, `,"AuthenticationMethod":"AuthHeader","x-amz-id-2":"`...)
		b = appendRand(b, c.rng, alnum, 56)
		b = append(b, `","bytesTransferredOut":`...)
		b = strconv.AppendInt(b, int64(c.rng.IntN(400000)), 10)
		b = append(b, '}')
	}
	b = append(b, `,"requestID":"`...)
	if a.prefix == "s3" {
		b = appendRand(b, c.rng, upperAlnum[:26]+"0123456789", 16)
	} else {
		b = appendUUID(b, c.rng)
	}
	b = append(b, `","eventID":"`...)
	b = appendUUID(b, c.rng)
	b = append(b, `","readOnly":`...)
	b = strconv.AppendBool(b, a.readOnly)
	if a.data && a.prefix == "s3" {
		b = append(b, `,"resources":[{"type":"AWS::S3::Object","ARN":"arn:aws:s3:::`...)
		b = append(b, c.bucket...)
		b = append(b, `/object"},{"accountId":"`...)
		b = append(b, c.acct...)
		b = append(b, `","type":"AWS::S3::Bucket","ARN":"arn:aws:s3:::`...)
		b = append(b, c.bucket...)
		b = append(b, `"}]`...)
	}
	b = append(b, `,"eventType":"AwsApiCall","managementEvent":`...)
	b = strconv.AppendBool(b, !a.data)
	b = append(b, `,"recipientAccountId":"`...)
	b = append(b, c.acct...)
	if a.data {
		b = append(b, `","eventCategory":"Data"`...)
	} else {
		b = append(b, `","eventCategory":"Management"`...)
	}
	if id.tls {
		b = append(b, `,"tlsDetails":{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"`...)
		b = append(b, a.prefix...)
		if a.prefix == "cloudwatch" {
			b = b[:len(b)-len(a.prefix)]
			b = append(b, "monitoring"...)
		}
		if a.prefix != "iam" && a.prefix != "sts" {
			b = append(b, '.')
			b = append(b, c.region...)
		}
		b = append(b, `.amazonaws.com"}`...)
	}
	if id.console {
		b = append(b, `,"sessionCredentialFromConsole":"true"`...)
	}
	return append(b, '}')
}

// apiTemplates holds an API's parsed request and response templates.
type apiTemplates struct{ params, resp []seg }

var templates = map[*api]apiTemplates{}

func init() {
	for _, s := range catalog {
		a := s.api
		if _, ok := templates[a]; ok {
			continue
		}
		var t apiTemplates
		if a.params != "" {
			t.params = parseTemplate(a.params)
		}
		if a.resp != "" {
			t.resp = parseTemplate(a.resp)
		}
		templates[a] = t
	}
}

// mix64 is splitmix64's finaliser: it spreads a key over 64 bits.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// newRand returns a PCG generator for a seed and a key path, such as
// (purpose, account, region, day): the same path always gives the same
// numbers, whatever runs in parallel.
func newRand(seed int64, path ...int64) *rand.Rand {
	h := mix64(uint64(seed))
	for _, p := range path {
		h = mix64(h ^ uint64(p))
	}
	return rand.New(rand.NewPCG(h, mix64(h^0x5851f42d4c957f2d)))
}

// poisson draws from a Poisson law of mean lambda.
func poisson(r *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 30:
		l, k, p := math.Exp(-lambda), 0, r.Float64()
		for p > l {
			k++
			p *= r.Float64()
		}
		return k
	}
	n := int(math.Round(lambda + math.Sqrt(lambda)*r.NormFloat64()))
	return max(n, 0)
}
