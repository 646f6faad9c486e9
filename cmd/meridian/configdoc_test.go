package main

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

// The configuration reference (docs/configuration.md) and the example
// configuration (examples/meridian.yaml) must name every key of config,
// every environment variable and every flag of "meridian serve". These
// tests read the keys from the config struct itself, so that a key added
// to the code without its documentation fails here.

// configKey is one key of the configuration.
type configKey struct {
	path string // "dns.listen"; "health.agent_tokens[].pool" inside a list
	// env is the environment variable setting the key, "" when the key
	// cannot be set from the environment (a list of maps, or inside one).
	env string
	// commentedOK accepts a commented-out occurrence in the example file:
	// sections off by default, and the fields of list entries.
	commentedOK bool
}

// exampleCommented are the sections examples/meridian.yaml shows commented
// out, because setting them turns a feature on.
var exampleCommented = map[string]bool{"dnstap": true}

// configKeys walks t, a struct with mapstructure tags, and returns its
// keys in order, with prefix before each.
func configKeys(t reflect.Type, prefix string, inList bool) []configKey {
	var keys []configKey
	for f := range t.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		path := prefix + tag
		commented := inList || exampleCommented[strings.SplitN(path, ".", 2)[0]]
		switch ft := f.Type; {
		case ft.Kind() == reflect.Struct && ft != reflect.TypeFor[time.Duration]():
			keys = append(keys, configKeys(ft, path+".", inList)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			keys = append(keys, configKey{path: path, commentedOK: commented})
			keys = append(keys, configKeys(ft.Elem(), path+"[].", true)...)
		default:
			k := configKey{path: path, commentedOK: commented}
			if !inList {
				k.env = envPrefix + "_" + strings.ToUpper(strings.ReplaceAll(path, ".", "_"))
			}
			keys = append(keys, k)
		}
	}
	return keys
}

func readRepoFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestConfigDocWalk guards the walk itself: a walk that found nothing
// would let every other test here pass.
func TestConfigDocWalk(t *testing.T) {
	keys := map[string]configKey{}
	for _, k := range configKeys(reflect.TypeFor[config](), "", false) {
		keys[k.path] = k
	}
	want := []configKey{
		{path: "dns.listen", env: "MERIDIAN_DNS_LISTEN"},
		{path: "dns.tcp_idle_timeout", env: "MERIDIAN_DNS_TCP_IDLE_TIMEOUT"},
		{path: "health.agent_tokens"},
		{path: "health.agent_tokens[].sha256", commentedOK: true},
		{path: "dnstap.queue", env: "MERIDIAN_DNSTAP_QUEUE", commentedOK: true},
		{path: "log.format", env: "MERIDIAN_LOG_FORMAT"},
	}
	for _, w := range want {
		if got, ok := keys[w.path]; !ok || got != w {
			t.Errorf("key %s = %+v, want %+v", w.path, got, w)
		}
	}
	if _, ok := keys["file"]; ok {
		t.Error("the unexported field file is not a key")
	}
}

// TestConfigDocKeys checks that docs/configuration.md names every key and
// its environment variable, and that examples/meridian.yaml holds every
// key in its section.
func TestConfigDocKeys(t *testing.T) {
	doc := readRepoFile(t, "docs/configuration.md")
	example := readRepoFile(t, "examples/meridian.yaml")
	for _, k := range configKeys(reflect.TypeFor[config](), "", false) {
		t.Run(k.path, func(t *testing.T) {
			if !strings.Contains(doc, "`"+k.path+"`") {
				t.Errorf("docs/configuration.md does not name `%s`", k.path)
			}
			if k.env != "" && !strings.Contains(doc, "`"+k.env+"`") {
				t.Errorf("docs/configuration.md does not name `%s`, the environment variable of %s", k.env, k.path)
			}
			if !inExample(example, k) {
				t.Errorf("examples/meridian.yaml does not hold %s (commented out allowed: %v)", k.path, k.commentedOK)
			}
		})
	}
}

// inExample reports whether the YAML text example holds key k: its
// section at the top level, then its name indented below it, before the
// next section. Inside a list the entry's fields are looked for anywhere
// in the section, as "name:" in a flow or block mapping.
func inExample(example string, k configKey) bool {
	section, rest, _ := strings.Cut(k.path, ".")
	head := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(section) + `:[ \t]*$`)
	indent := `^[ \t]+` // a key below its section
	if k.commentedOK {
		head = regexp.MustCompile(`(?m)^(?:#[ \t]*)?` + regexp.QuoteMeta(section) + `:[ \t]*$`)
		indent = `^#?[ \t]+(?:#[ \t]*)?` // "#   key:" or "  # key:" too
	}
	loc := head.FindStringIndex(example)
	if loc == nil {
		return false
	}
	body := example[loc[1]:]
	// The section ends at the next line starting a top-level key, or a
	// commented one ("# name:" with one space, as sections are commented).
	if end := regexp.MustCompile(`(?m)^(?:# ?)?[a-z_]+:`).FindStringIndex(body); end != nil {
		body = body[:end[0]]
	}
	name := rest[strings.LastIndex(rest, ".")+1:]
	if list, field, ok := strings.Cut(rest, "[]."); ok {
		name = field
		if !strings.Contains(body, list+":") {
			return false
		}
		return regexp.MustCompile(`[{\s]` + regexp.QuoteMeta(name) + `:`).MatchString(body)
	}
	key := regexp.MustCompile(`(?m)` + indent + regexp.QuoteMeta(name) + `:`)
	return key.MatchString(body)
}

// TestConfigDocFlags checks that docs/configuration.md names every flag
// of "meridian serve", each on a line with the key it sets.
func TestConfigDocFlags(t *testing.T) {
	doc := readRepoFile(t, "docs/configuration.md")
	lines := strings.Split(doc, "\n")
	newServeFlags().VisitAll(func(f *pflag.Flag) {
		t.Run(f.Name, func(t *testing.T) {
			flag := "`--" + f.Name
			if !strings.Contains(doc, flag) {
				t.Fatalf("docs/configuration.md does not name %s`", flag)
			}
			key, ok := flagKeys[f.Name]
			if !ok {
				return // --config
			}
			for _, l := range lines {
				if strings.Contains(l, flag) && strings.Contains(l, "`"+key+"`") {
					return
				}
			}
			t.Errorf("docs/configuration.md has no line naming both %s` and `%s`", flag, key)
		})
	})
}
