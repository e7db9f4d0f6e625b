package document

import (
	"sync"

	"github.com/certd-dev/certd/consumer/fonts"
)

// genCache is a small bounded cache with two generations: entries are
// looked up in the current and the previous generation (and promoted);
// when the current one is full it becomes the previous one and the oldest
// is dropped. Cheap approximate LRU for the per-process caches below, safe
// for concurrent use.
type genCache[K comparable, V any] struct {
	mu        sync.Mutex
	cur, prev map[K]V
	used      int // cost of cur
	limit     int // cost per generation
	cost      func(K, V) int
}

func newGenCache[K comparable, V any](limit int, cost func(K, V) int) *genCache[K, V] {
	return &genCache[K, V]{cur: map[K]V{}, prev: map[K]V{}, limit: limit, cost: cost}
}

func (c *genCache[K, V]) get(k K) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if v, ok := c.cur[k]; ok {
		return v, true
	}
	v, ok := c.prev[k]
	if ok {
		c.putLocked(k, v)
	}
	return v, ok
}

func (c *genCache[K, V]) put(k K, v V) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.putLocked(k, v)
}

func (c *genCache[K, V]) putLocked(k K, v V) {
	n := c.cost(k, v)
	if n > c.limit {
		return
	}
	if c.used+n > c.limit {
		c.prev, c.cur, c.used = c.cur, make(map[K]V, len(c.cur)), 0
	}
	c.cur[k] = v
	c.used += n
}

// layoutKey identifies a layout: same text, weight and fit give the same
// block.
type layoutKey struct {
	lib    *fontLib
	text   string
	weight int
	han    fonts.HanStyle
	fit    Fit
}

// layouts caches laid-out texts. Most of a certificate's texts (the
// design's fixed words, organisation, course, date) repeat from one
// certificate to the next; shaping them again is a third of a render.
// Blocks are immutable once built. Cost is counted in glyphs (~40 bytes
// each), so hostile texts with thousands of marks cannot blow the bound:
// at most 2×64K glyphs (~5 MB) are kept.
var layouts = newGenCache(64<<10, func(k layoutKey, b *textBlock) int {
	n := 1 + len(k.text)/4
	for _, ln := range b.lines {
		for _, r := range ln.runs {
			n += len(r.glyphs) + len(r.text)/4
		}
	}
	return n
})

// subsets caches font subsets by font and glyphs (with their
// characters): the fonts used only by a design's fixed texts, and often
// the others, cut the same subset for every certificate of a course.
var subsets = newGenCache(4<<20, func(k string, v *fontSubset) int {
	return len(k) + len(v.file) + len(v.zfile) + len(v.zToUni) + 16*len(v.order)
})

// clear empties the cache.
func (c *genCache[K, V]) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cur, c.prev, c.used = map[K]V{}, map[K]V{}, 0
}
