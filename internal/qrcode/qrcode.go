// Package qrcode is a QR code encoder (ISO/IEC 18004) for one case: byte
// mode, error correction level M, the smallest version that fits. It follows the
// structure of Project Nayuki's reference encoder. Why not
// boombuler/barcode (maroto's): it evaluates the eight mask patterns on
// bit lists through an image interface and feeds modules through a
// goroutine and channels, ~3 ms per certificate - most of a render. This
// one keeps modules in a byte slice and takes ~0.1 ms, choosing the mask
// by the same penalty rules. TestQRMatchesBoombuler checks that it draws
// the same symbol as boombuler for the same mask.
//
// Invariants: Encode is safe for concurrent use (version templates are
// built once and shared read-only); a Code is never modified after Encode
// returns it.
package qrcode

import (
	"errors"
	"fmt"
	"math/bits"
	"slices"
	"sync"
)

// Code is a QR symbol: size×size modules, dark = 1, row-major.
type Code struct {
	size int
	mod  []byte // 1 = dark
	fn   []byte // 1 = function module (not data, not masked)
}

// Dark reports whether module (x, y) is dark; 0 <= x, y < Size().
func (q *Code) Dark(x, y int) bool { return q.mod[y*q.size+x] != 0 }

// Size is the number of modules per side (without the quiet zone).
func (q *Code) Size() int { return q.size }

// ErrTooLong means the data does not fit a version 40 symbol at level M.
var ErrTooLong = errors.New("qr code: data too long")

// error correction codewords per block and number of blocks, level M,
// indexed by version
var (
	qrEccPerBlockM = [41]int{0, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26, 26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28}
	qrBlocksM      = [41]int{0, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20, 21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49}
)

// qrRawModules is the number of data+ecc bits a version holds.
func qrRawModules(v int) int {
	n := (16*v+128)*v + 64
	if v >= 2 {
		na := v/7 + 2
		n -= (25*na-10)*na - 55
		if v >= 7 {
			n -= 36
		}
	}
	return n
}

func qrDataCodewords(v int) int { return qrRawModules(v)/8 - qrEccPerBlockM[v]*qrBlocksM[v] }

// Encode encodes data in byte mode at level M with the mask of lowest
// penalty (mask < 0) or the given mask (0 to 7); data longer than a
// version 40 symbol holds fails with ErrTooLong.
func Encode(data []byte, mask int) (*Code, error) {
	if mask > 7 {
		return nil, fmt.Errorf("qrcode: mask %d: want 0 to 7, or < 0 for the best", mask)
	}
	v := 1
	for ; v <= 40; v++ {
		cc := 8
		if v >= 10 {
			cc = 16
		}
		if 4+cc+8*len(data) <= 8*qrDataCodewords(v) {
			break
		}
	}
	if v > 40 {
		return nil, ErrTooLong
	}
	// data codewords: mode, count, bytes, terminator, padding
	capBytes := qrDataCodewords(v)
	cw := make([]byte, 0, qrRawModules(v)/8)
	var acc uint32
	nacc := 0
	put := func(val uint32, n int) {
		for i := n - 1; i >= 0; i-- {
			acc = acc<<1 | (val>>uint(i))&1
			nacc++
			if nacc == 8 {
				cw = append(cw, byte(acc))
				acc, nacc = 0, 0
			}
		}
	}
	put(4, 4)
	if v >= 10 {
		put(uint32(len(data)), 16)
	} else {
		put(uint32(len(data)), 8)
	}
	for _, b := range data {
		put(uint32(b), 8)
	}
	used := 8*len(cw) + nacc
	put(0, min(4, 8*capBytes-used))
	if nacc > 0 {
		put(0, 8-nacc)
	}
	for pad := byte(0xEC); len(cw) < capBytes; pad ^= 0xEC ^ 0x11 {
		cw = append(cw, pad)
	}
	all := qrInterleave(cw, v)

	t := qrTemplateFor(v)
	q := &Code{size: t.size, mod: slices.Clone(t.mod), fn: t.fn}
	for i, k := range t.dataPos {
		if i >= len(all)*8 {
			break
		}
		q.mod[k] = all[i>>3] >> uint(7-i&7) & 1
	}
	if mask < 0 && t.bits != nil {
		mask = t.bestMaskBits(q)
	}
	if mask < 0 {
		// score the eight masked symbols on a scratch copy
		try := &Code{size: q.size, mod: make([]byte, len(q.mod)), fn: q.fn}
		tr := make([]byte, len(q.mod))
		best := -1
		for m := 0; m < 8; m++ {
			for i, p := range t.masks[m] {
				try.mod[i] = q.mod[i] ^ p
			}
			try.drawFormat(m)
			if p := try.penaltyT(tr); best < 0 || p < best {
				best, mask = p, m
			}
		}
	}
	for i, p := range t.masks[mask] {
		q.mod[i] ^= p
	}
	q.drawFormat(mask)
	return q, nil
}

// qrTemplate is what depends only on the version: function patterns,
// the order of data modules and the eight mask patterns (on data modules).
type qrTemplate struct {
	size    int
	mod, fn []byte
	dataPos []int32
	masks   [8][]byte
	bits    *bitMasks // for size <= 63
}

var qrTemplates sync.Map // version -> *qrTemplate

func qrTemplateFor(v int) *qrTemplate {
	if t, ok := qrTemplates.Load(v); ok {
		return t.(*qrTemplate)
	}
	q := &Code{size: 4*v + 17}
	n := q.size
	q.mod = make([]byte, n*n)
	q.fn = make([]byte, n*n)
	q.drawFunctionPatterns(v)
	t := &qrTemplate{size: n, mod: q.mod, fn: q.fn}
	for right := n - 1; right >= 1; right -= 2 {
		if right == 6 {
			right = 5
		}
		for vert := range n {
			for j := range 2 {
				x, y := right-j, vert
				if (right+1)&2 == 0 {
					y = n - 1 - vert
				}
				if k := y*n + x; q.fn[k] == 0 {
					t.dataPos = append(t.dataPos, int32(k))
				}
			}
		}
	}
	for m := range 8 {
		z := &Code{size: n, mod: make([]byte, n*n), fn: q.fn}
		z.applyMask(m)
		t.masks[m] = z.mod
	}
	if n <= 63 {
		t.bits = newBitMasks(t)
	}
	qrTemplates.Store(v, t)
	return t
}

// qrInterleave splits data codewords into blocks, appends each block's
// Reed-Solomon codewords and interleaves the blocks.
func qrInterleave(data []byte, v int) []byte {
	nb, ecl := qrBlocksM[v], qrEccPerBlockM[v]
	raw := qrRawModules(v) / 8
	short := nb - raw%nb
	shortLen := raw / nb
	div := rsDivisor(ecl)
	blocks := make([][]byte, nb)
	k := 0
	for i := range nb {
		n := shortLen - ecl
		if i >= short {
			n++
		}
		b := make([]byte, 0, shortLen+1)
		b = append(b, data[k:k+n]...)
		k += n
		ecc := rsRemainder(b, div)
		if i < short {
			b = append(b, 0)
		}
		blocks[i] = append(b, ecc...)
	}
	out := make([]byte, 0, raw)
	for i := range blocks[0] {
		for j, b := range blocks {
			if i != shortLen-ecl || j >= short {
				out = append(out, b[i])
			}
		}
	}
	return out
}

// GF(256) with the QR polynomial x^8+x^4+x^3+x^2+1: exp and log tables.
var gfExp, gfLog = func() (e [512]byte, l [256]byte) {
	x := 1
	for i := range 255 {
		e[i], e[i+255] = byte(x), byte(x)
		l[x] = byte(i)
		x <<= 1
		if x&0x100 != 0 {
			x ^= 0x11D
		}
	}
	return e, l
}()

func gfMul(x, y byte) byte {
	if x == 0 || y == 0 {
		return 0
	}
	return gfExp[int(gfLog[x])+int(gfLog[y])]
}

func rsDivisor(degree int) []byte {
	r := make([]byte, degree)
	r[degree-1] = 1
	root := byte(1)
	for range degree {
		for j := range r {
			r[j] = gfMul(r[j], root)
			if j+1 < len(r) {
				r[j] ^= r[j+1]
			}
		}
		root = gfMul(root, 2)
	}
	return r
}

func rsRemainder(data, div []byte) []byte {
	r := make([]byte, len(div))
	for _, b := range data {
		f := b ^ r[0]
		copy(r, r[1:])
		r[len(r)-1] = 0
		for i := range r {
			r[i] ^= gfMul(div[i], f)
		}
	}
	return r
}

func (q *Code) setFn(x, y int, dark bool) {
	i := y*q.size + x
	q.mod[i] = 0
	if dark {
		q.mod[i] = 1
	}
	q.fn[i] = 1
}

func (q *Code) setMod(x, y int, dark bool) {
	q.mod[y*q.size+x] = 0
	if dark {
		q.mod[y*q.size+x] = 1
	}
}

func (q *Code) drawFunctionPatterns(v int) {
	n := q.size
	for i := range n {
		q.setFn(6, i, i%2 == 0)
		q.setFn(i, 6, i%2 == 0)
	}
	for _, c := range [3][2]int{{3, 3}, {n - 4, 3}, {3, n - 4}} {
		for dy := -4; dy <= 4; dy++ {
			for dx := -4; dx <= 4; dx++ {
				x, y := c[0]+dx, c[1]+dy
				if x >= 0 && x < n && y >= 0 && y < n {
					d := max(iabs(dx), iabs(dy))
					q.setFn(x, y, d != 2 && d != 4)
				}
			}
		}
	}
	if v >= 2 {
		na := v/7 + 2
		step := (v*8 + na*3 + 5) / (na*4 - 4) * 2
		pos := make([]int, na)
		pos[0] = 6
		for i, p := na-1, n-7; i >= 1; i, p = i-1, p-step {
			pos[i] = p
		}
		for i := range na {
			for j := range na {
				if (i == 0 && j == 0) || (i == 0 && j == na-1) || (i == na-1 && j == 0) {
					continue
				}
				for dy := -2; dy <= 2; dy++ {
					for dx := -2; dx <= 2; dx++ {
						q.setFn(pos[i]+dx, pos[j]+dy, max(iabs(dx), iabs(dy)) != 1)
					}
				}
			}
		}
	}
	q.drawFormat(0) // reserve the format areas; redrawn with the mask
	for _, k := range qrFormatModules(n) {
		q.fn[k] = 1
	}
	if v >= 7 {
		rem := v
		for range 12 {
			rem = rem<<1 ^ (rem>>11)*0x1F25
		}
		bits := v<<12 | rem
		for i := range 18 {
			dark := bits>>uint(i)&1 != 0
			a, b := n-11+i%3, i/3
			q.setFn(a, b, dark)
			q.setFn(b, a, dark)
		}
	}
}

// drawFormat draws both copies of the format information (level M, mask)
// into the modules reserved for it (drawFunctionPatterns reserves them).
// It never writes fn, which is shared between symbols of one version.
func (q *Code) drawFormat(mask int) {
	data := 0<<3 | mask // level M is 00
	rem := data
	for range 10 {
		rem = rem<<1 ^ (rem>>9)*0x537
	}
	bits := (data<<10 | rem) ^ 0x5412
	bit := func(i int) bool { return bits>>uint(i)&1 != 0 }
	n := q.size
	for i := 0; i <= 5; i++ {
		q.setMod(8, i, bit(i))
	}
	q.setMod(8, 7, bit(6))
	q.setMod(8, 8, bit(7))
	q.setMod(7, 8, bit(8))
	for i := 9; i < 15; i++ {
		q.setMod(14-i, 8, bit(i))
	}
	for i := 0; i < 8; i++ {
		q.setMod(n-1-i, 8, bit(i))
	}
	for i := 8; i < 15; i++ {
		q.setMod(8, n-15+i, bit(i))
	}
	q.setMod(8, n-8, true) // dark module
}

// qrFormatModules lists the module indices drawFormat writes.
func qrFormatModules(n int) []int {
	z := &Code{size: n, mod: make([]byte, n*n)}
	for i := range z.mod {
		z.mod[i] = 2
	}
	z.drawFormat(0)
	var out []int
	for i, v := range z.mod {
		if v != 2 {
			out = append(out, i)
		}
	}
	return out
}

func (q *Code) applyMask(m int) {
	n := q.size
	for y := range n {
		for x := range n {
			var inv bool
			switch m {
			case 0:
				inv = (x+y)%2 == 0
			case 1:
				inv = y%2 == 0
			case 2:
				inv = x%3 == 0
			case 3:
				inv = (x+y)%3 == 0
			case 4:
				inv = (x/3+y/2)%2 == 0
			case 5:
				inv = x*y%2+x*y%3 == 0
			case 6:
				inv = (x*y%2+x*y%3)%2 == 0
			case 7:
				inv = ((x+y)%2+x*y%3)%2 == 0
			}
			k := y*n + x
			if inv && q.fn[k] == 0 {
				q.mod[k] ^= 1
			}
		}
	}
}

// penalty scores the symbol by the four rules of ISO/IEC 18004 7.8.3.
func (q *Code) penalty() int { return q.penaltyT(make([]byte, len(q.mod))) }

// penaltyT is penalty with a scratch buffer for the transposed symbol.
func (q *Code) penaltyT(tr []byte) int {
	n := q.size
	p := 0
	runs := make([]int, 0, n+2)
	for y := range n {
		p += linePenalty(q.mod[y*n:y*n+n], runs)
	}
	for y := range n {
		for x := range n {
			tr[x*n+y] = q.mod[y*n+x]
		}
	}
	for x := range n {
		p += linePenalty(tr[x*n:x*n+n], runs)
	}
	const n2, n4 = 3, 10
	dark := 0
	m := q.mod
	for y := range n {
		row := m[y*n : y*n+n]
		for _, c := range row {
			dark += int(c)
		}
		if y == n-1 {
			break
		}
		next := m[(y+1)*n : (y+1)*n+n]
		for x := 0; x < n-1; x++ {
			c := row[x]
			if c == row[x+1] && c == next[x] && c == next[x+1] {
				p += n2
			}
		}
	}
	total := n * n
	k := (iabs(dark*20-total*10)+total-1)/total - 1
	return p + k*n4
}

// linePenalty scores one row or column by rules 1 (runs of five or
// more: 3 + 1 per module beyond five) and 3 (1:1:3:1:1 dark:light
// patterns with four light modules on one side, the symbol's border
// counting as light), exactly as Nayuki's run-history formulation.
func linePenalty(line []byte, runs []int) int {
	n := len(line)
	// runs alternate light, dark, light, ...; the first and last are
	// light and include the border
	runs = append(runs[:0], 0)
	color := byte(0)
	for _, c := range line {
		if c != color {
			runs = append(runs, 0)
			color = c
		}
		runs[len(runs)-1]++
	}
	if color == 1 {
		runs = append(runs, 0)
	}
	return runsPenalty(runs, n)
}

// runsPenalty scores a line given as run lengths alternating light,
// dark, ..., light (first and last light, possibly 0).
func runsPenalty(runs []int, n int) int {
	const n1, n3 = 3, 40
	p := 0
	for _, r := range runs {
		if r >= 5 {
			p += n1 + r - 5
		}
	}
	runs[0] += n
	runs[len(runs)-1] += n
	for i := 1; i+5 < len(runs); i += 2 {
		u := runs[i]
		if runs[i+1] != u || runs[i+2] != 3*u || runs[i+3] != u || runs[i+4] != u {
			continue
		}
		before, after := runs[i-1], runs[i+5]
		if before >= 4*u && after >= u {
			p += n3
		}
		if after >= 4*u && before >= u {
			p += n3
		}
	}
	return p
}

// Bit-parallel scoring for symbols up to 63 modules wide (version 11;
// certificate URLs need version 4-6): rows and columns are bit sets, runs
// are found from colour transitions with TrailingZeros instead of a
// branch per module (random-looking data mispredicts half of those).

// bitLines are the rows or columns of a symbol as bit sets (bit x = module x).
type bitLines []uint64

// linesOf returns the rows (or, transposed, the columns) of mod.
func linesOf(mod []byte, n int, transposed bool) bitLines {
	out := make(bitLines, n)
	for y := range n {
		for x := range n {
			b := uint64(mod[y*n+x])
			if transposed {
				out[x] |= b << uint(y)
			} else {
				out[y] |= b << uint(x)
			}
		}
	}
	return out
}

// bitLinePenalty is linePenalty for a line of n bits.
func bitLinePenalty(r uint64, n int, runs []int) int {
	t := (r^r<<1)&(1<<uint(n)-1) | 1<<uint(n)
	runs = runs[:0]
	prev := 0
	for t != 0 {
		p := bits.TrailingZeros64(t)
		runs = append(runs, p-prev)
		prev = p
		t &= t - 1
	}
	if len(runs)%2 == 0 {
		runs = append(runs, 0) // ended dark
	}
	return runsPenalty(runs, n)
}

// bitPenalty is penalty for a symbol given as rows and columns.
func bitPenalty(rows, cols bitLines, runs []int) int {
	const n2, n4 = 3, 10
	n := len(rows)
	p := 0
	dark := 0
	for y, r := range rows {
		p += bitLinePenalty(r, n, runs)
		p += bitLinePenalty(cols[y], n, runs)
		dark += bits.OnesCount64(r)
		if y < n-1 {
			b := rows[y+1]
			d := (r ^ r>>1) | (b ^ b>>1) | (r ^ b)
			p += n2 * bits.OnesCount64(^d&(1<<uint(n-1)-1))
		}
	}
	total := n * n
	k := (iabs(dark*20-total*10)+total-1)/total - 1
	return p + k*n4
}

// bitMasks holds, per version, what masking and the format information
// do to rows and columns: masked = (lines ^ mask[m]) &^ fmtPos | fmt[m].
type bitMasks struct {
	rows, cols struct {
		mask, fmt [8]bitLines
		fmtPos    bitLines
	}
}

func newBitMasks(t *qrTemplate) *bitMasks {
	n := t.size
	bm := &bitMasks{}
	pos := make([]byte, n*n)
	for _, k := range qrFormatModules(n) {
		pos[k] = 1
	}
	bm.rows.fmtPos, bm.cols.fmtPos = linesOf(pos, n, false), linesOf(pos, n, true)
	for m := range 8 {
		bm.rows.mask[m], bm.cols.mask[m] = linesOf(t.masks[m], n, false), linesOf(t.masks[m], n, true)
		z := &Code{size: n, mod: make([]byte, n*n)}
		z.drawFormat(m)
		bm.rows.fmt[m], bm.cols.fmt[m] = linesOf(z.mod, n, false), linesOf(z.mod, n, true)
	}
	return bm
}

// bestMaskBits returns the mask of lowest penalty for the unmasked
// symbol q (n <= 63).
func (t *qrTemplate) bestMaskBits(q *Code) int {
	n := q.size
	rows0, cols0 := linesOf(q.mod, n, false), linesOf(q.mod, n, true)
	rows, cols := make(bitLines, n), make(bitLines, n)
	runs := make([]int, 0, n+2)
	bm := t.bits
	best, mask := -1, 0
	for m := range 8 {
		for i := range n {
			rows[i] = (rows0[i]^bm.rows.mask[m][i])&^bm.rows.fmtPos[i] | bm.rows.fmt[m][i]
			cols[i] = (cols0[i]^bm.cols.mask[m][i])&^bm.cols.fmtPos[i] | bm.cols.fmt[m][i]
		}
		if p := bitPenalty(rows, cols, runs); best < 0 || p < best {
			best, mask = p, m
		}
	}
	return mask
}

func iabs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
