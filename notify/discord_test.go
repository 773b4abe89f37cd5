package notify

import (
	"fmt"
	"net/http"
	"time"
	"unicode/utf8"
)

// validateDiscord checks an execute-webhook payload against Discord's
// embed limits: content ≤ 2000; ≤ 10 embeds; title ≤ 256; description ≤
// 4096; ≤ 25 fields with name ≤ 256 and value ≤ 1024, both non-empty;
// footer ≤ 2048; colour 0 to 0xFFFFFF; ISO 8601 timestamp; 6000 characters
// in all the embeds' text.
func validateDiscord(_ *http.Request, body []byte) error {
	v, err := decodeJSON(body)
	if err != nil {
		return err
	}
	s := &schema{}
	msg := s.obj(v, "message", "content", "embeds", "allowed_mentions")
	content := s.str(msg["content"], "content", 0, discordMaxContent)
	embeds := s.arr(msg["embeds"], "embeds", 0, discordMaxEmbeds)
	if content == "" && len(embeds) == 0 {
		s.fail("message", "neither content nor embeds")
	}
	am := s.obj(msg["allowed_mentions"], "allowed_mentions", "parse")
	s.arr(am["parse"], "allowed_mentions.parse", 0, 0)
	total := 0
	count := func(x string) string { total += utf8.RuneCountInString(x); return x }
	for i, e := range embeds {
		where := fmt.Sprintf("embeds[%d]", i)
		o := s.obj(e, where, "title", "description", "color", "fields", "timestamp", "footer")
		count(s.str(o["title"], where+".title", 1, discordMaxTitle))
		if d, ok := o["description"]; ok {
			count(s.str(d, where+".description", 1, discordMaxDescription))
		}
		if c, ok := o["color"].(float64); !ok || c < 0 || c > 0xFFFFFF || c != float64(int(c)) {
			s.fail(where+".color", "%v, want an integer 0 to 0xFFFFFF", o["color"])
		}
		if _, err := time.Parse(time.RFC3339, s.str(o["timestamp"], where+".timestamp", 1, 40)); err != nil {
			s.fail(where+".timestamp", "%v", err)
		}
		f := s.obj(o["footer"], where+".footer", "text")
		count(s.str(f["text"], where+".footer.text", 1, discordMaxFooter))
		if fs, ok := o["fields"]; ok {
			for j, fv := range s.arr(fs, where+".fields", 1, discordMaxFields) {
				fw := fmt.Sprintf("%s.fields[%d]", where, j)
				fo := s.obj(fv, fw, "name", "value", "inline")
				count(s.str(fo["name"], fw+".name", 1, discordMaxFieldName))
				count(s.str(fo["value"], fw+".value", 1, discordMaxFieldValue))
				s.boolean(fo["inline"], fw+".inline")
			}
		}
	}
	if total > discordMaxTotal {
		s.fail("embeds", "%d characters in all, want at most %d", total, discordMaxTotal)
	}
	return s.err()
}
