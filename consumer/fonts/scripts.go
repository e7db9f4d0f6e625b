package fonts

import (
	"fmt"

	"github.com/go-text/typesetting/language"
)

// scriptFamilies lists, per script, the font families tried for it in
// order (file names are FAMILY-Regular.ttf / FAMILY-Bold.ttf). Latin,
// Greek and Cyrillic use the design font (Primary); Han, kana, Hangul and
// Bopomofo use the CJK faces (Han). Sans faces come first, matching the
// script fonts certd has always used, then Serif where Noto has one.
var scriptFamilies = map[language.Script][]string{
	language.Adlam:                  {"NotoSansAdlam"},
	language.Ahom:                   {"NotoSerifAhom"},
	language.Anatolian_Hieroglyphs:  {"NotoSansAnatolianHieroglyphs"},
	language.Armenian:               {"NotoSansArmenian", "NotoSerifArmenian"},
	language.Avestan:                {"NotoSansAvestan"},
	language.Balinese:               {"NotoSansBalinese", "NotoSerifBalinese"},
	language.Bamum:                  {"NotoSansBamum"},
	language.Bassa_Vah:              {"NotoSansBassaVah"},
	language.Batak:                  {"NotoSansBatak"},
	language.Bengali:                {"NotoSansBengali", "NotoSerifBengali"},
	language.Bhaiksuki:              {"NotoSansBhaiksuki"},
	language.Brahmi:                 {"NotoSansBrahmi"},
	language.Buginese:               {"NotoSansBuginese"},
	language.Buhid:                  {"NotoSansBuhid"},
	language.Canadian_Aboriginal:    {"NotoSansCanadianAboriginal"},
	language.Carian:                 {"NotoSansCarian"},
	language.Caucasian_Albanian:     {"NotoSansCaucasianAlbanian"},
	language.Chakma:                 {"NotoSansChakma"},
	language.Cham:                   {"NotoSansCham"},
	language.Cherokee:               {"NotoSansCherokee"},
	language.Coptic:                 {"NotoSansCoptic"},
	language.Cuneiform:              {"NotoSansCuneiform"},
	language.Cypriot:                {"NotoSansCypriot"},
	language.Deseret:                {"NotoSansDeseret"},
	language.Devanagari:             {"NotoSansDevanagari", "NotoSerifDevanagari"},
	language.Dogra:                  {"NotoSerifDogra"},
	language.Duployan:               {"NotoSansDuployan"},
	language.Egyptian_Hieroglyphs:   {"NotoSansEgyptianHieroglyphs"},
	language.Elbasan:                {"NotoSansElbasan"},
	language.Elymaic:                {"NotoSansElymaic"},
	language.Ethiopic:               {"NotoSansEthiopic", "NotoSerifEthiopic"},
	language.Georgian:               {"NotoSansGeorgian", "NotoSerifGeorgian"},
	language.Glagolitic:             {"NotoSansGlagolitic"},
	language.Gothic:                 {"NotoSansGothic"},
	language.Grantha:                {"NotoSansGrantha", "NotoSerifGrantha"},
	language.Gujarati:               {"NotoSansGujarati", "NotoSerifGujarati"},
	language.Gunjala_Gondi:          {"NotoSansGunjalaGondi"},
	language.Gurmukhi:               {"NotoSansGurmukhi", "NotoSerifGurmukhi"},
	language.Hanifi_Rohingya:        {"NotoSansHanifiRohingya"},
	language.Hanunoo:                {"NotoSansHanunoo"},
	language.Hatran:                 {"NotoSansHatran"},
	language.Hebrew:                 {"NotoSansHebrew", "NotoSerifHebrew"},
	language.Imperial_Aramaic:       {"NotoSansImperialAramaic"},
	language.Inscriptional_Pahlavi:  {"NotoSansInscriptionalPahlavi"},
	language.Inscriptional_Parthian: {"NotoSansInscriptionalParthian"},
	language.Javanese:               {"NotoSansJavanese"},
	language.Kaithi:                 {"NotoSansKaithi"},
	language.Kannada:                {"NotoSansKannada", "NotoSerifKannada"},
	language.Kayah_Li:               {"NotoSansKayahLi"},
	language.Kharoshthi:             {"NotoSansKharoshthi"},
	language.Khmer:                  {"NotoSansKhmer", "NotoSerifKhmer"},
	language.Khojki:                 {"NotoSansKhojki", "NotoSerifKhojki"},
	language.Khudawadi:              {"NotoSansKhudawadi"},
	language.Lao:                    {"NotoSansLao", "NotoSerifLao"},
	language.Lepcha:                 {"NotoSansLepcha"},
	language.Limbu:                  {"NotoSansLimbu"},
	language.Linear_A:               {"NotoSansLinearA"},
	language.Linear_B:               {"NotoSansLinearB"},
	language.Lisu:                   {"NotoSansLisu"},
	language.Lycian:                 {"NotoSansLycian"},
	language.Lydian:                 {"NotoSansLydian"},
	language.Mahajani:               {"NotoSansMahajani"},
	language.Malayalam:              {"NotoSansMalayalam", "NotoSerifMalayalam"},
	language.Mandaic:                {"NotoSansMandaic"},
	language.Manichaean:             {"NotoSansManichaean"},
	language.Marchen:                {"NotoSansMarchen"},
	language.Masaram_Gondi:          {"NotoSansMasaramGondi"},
	language.Medefaidrin:            {"NotoSansMedefaidrin"},
	language.Meetei_Mayek:           {"NotoSansMeeteiMayek"},
	language.Mende_Kikakui:          {"NotoSansMendeKikakui"},
	language.Miao:                   {"NotoSansMiao"},
	language.Modi:                   {"NotoSansModi"},
	language.Mongolian:              {"NotoSansMongolian"},
	language.Mro:                    {"NotoSansMro"},
	language.Multani:                {"NotoSansMultani"},
	language.Myanmar:                {"NotoSansMyanmar", "NotoSerifMyanmar"},
	language.Nabataean:              {"NotoSansNabataean"},
	language.New_Tai_Lue:            {"NotoSansNewTaiLue"},
	language.Newa:                   {"NotoSansNewa"},
	language.Nushu:                  {"NotoSansNushu"},
	language.Nyiakeng_Puachue_Hmong: {"NotoSerifNyiakengPuachueHmong"},
	language.Ogham:                  {"NotoSansOgham"},
	language.Ol_Chiki:               {"NotoSansOlChiki"},
	language.Old_Hungarian:          {"NotoSansOldHungarian"},
	language.Old_Italic:             {"NotoSansOldItalic"},
	language.Old_North_Arabian:      {"NotoSansOldNorthArabian"},
	language.Old_Permic:             {"NotoSansOldPermic"},
	language.Old_Persian:            {"NotoSansOldPersian"},
	language.Old_Sogdian:            {"NotoSansOldSogdian"},
	language.Old_South_Arabian:      {"NotoSansOldSouthArabian"},
	language.Old_Turkic:             {"NotoSansOldTurkic"},
	language.Oriya:                  {"NotoSansOriya"},
	language.Osage:                  {"NotoSansOsage"},
	language.Osmanya:                {"NotoSansOsmanya"},
	language.Pahawh_Hmong:           {"NotoSansPahawhHmong"},
	language.Palmyrene:              {"NotoSansPalmyrene"},
	language.Pau_Cin_Hau:            {"NotoSansPauCinHau"},
	language.Phags_Pa:               {"NotoSansPhagsPa"},
	language.Phoenician:             {"NotoSansPhoenician"},
	language.Psalter_Pahlavi:        {"NotoSansPsalterPahlavi"},
	language.Rejang:                 {"NotoSansRejang"},
	language.Runic:                  {"NotoSansRunic"},
	language.Samaritan:              {"NotoSansSamaritan"},
	language.Saurashtra:             {"NotoSansSaurashtra"},
	language.Sharada:                {"NotoSansSharada"},
	language.Shavian:                {"NotoSansShavian"},
	language.Siddham:                {"NotoSansSiddham"},
	language.SignWriting:            {"NotoSansSignWriting"},
	language.Sinhala:                {"NotoSansSinhala", "NotoSerifSinhala"},
	language.Sogdian:                {"NotoSansSogdian"},
	language.Sora_Sompeng:           {"NotoSansSoraSompeng"},
	language.Soyombo:                {"NotoSansSoyombo"},
	language.Sundanese:              {"NotoSansSundanese"},
	language.Syloti_Nagri:           {"NotoSansSylotiNagri"},
	language.Syriac:                 {"NotoSansSyriac"},
	language.Tagalog:                {"NotoSansTagalog"},
	language.Tagbanwa:               {"NotoSansTagbanwa"},
	language.Tai_Le:                 {"NotoSansTaiLe"},
	language.Tai_Tham:               {"NotoSansTaiTham"},
	language.Tai_Viet:               {"NotoSansTaiViet"},
	language.Takri:                  {"NotoSansTakri"},
	language.Tamil:                  {"NotoSansTamil", "NotoSerifTamil"},
	language.Tangut:                 {"NotoSerifTangut"},
	language.Telugu:                 {"NotoSansTelugu", "NotoSerifTelugu"},
	language.Thaana:                 {"NotoSansThaana"},
	language.Thai:                   {"NotoSansThai", "NotoSerifThai"},
	language.Tibetan:                {"NotoSerifTibetan"},
	language.Tifinagh:               {"NotoSansTifinagh"},
	language.Tirhuta:                {"NotoSansTirhuta"},
	language.Ugaritic:               {"NotoSansUgaritic"},
	language.Vai:                    {"NotoSansVai"},
	language.Wancho:                 {"NotoSansWancho"},
	language.Warang_Citi:            {"NotoSansWarangCiti"},
	language.Yezidi:                 {"NotoSerifYezidi"},
	language.Yi:                     {"NotoSansYi"},
	language.Zanabazar_Square:       {"NotoSansZanabazarSquare"},
	language.Arabic:                 {"NotoNaskhArabic", "NotoSansArabic"},
	language.Nko:                    {"NotoSansNKo"},
}

// Families returns the font families tried for script s, in order; nil
// for the scripts of the design font and the CJK faces.
func Families(s language.Script) []string { return scriptFamilies[s] }

// Scripts lists every script with a family in the table.
func Scripts() []language.Script {
	out := make([]language.Script, 0, len(scriptFamilies))
	for s := range scriptFamilies {
		out = append(out, s)
	}
	return out
}

// Primary returns the file name of the design font (Noto Serif: Latin
// with Vietnamese, Greek, Cyrillic) for weight w.
func Primary(w Weight) string {
	switch w {
	case Bold:
		return "NotoSerif-Bold.ttf"
	case Italic:
		return "NotoSerif-Italic.ttf"
	}
	return "NotoSerif-Regular.ttf"
}

// SymbolFamilies are tried, after the script's fonts and the design
// font, for characters of no script (arrows, math, symbols).
var SymbolFamilies = []string{"NotoSans", "NotoSansSymbols", "NotoSansSymbols2", "NotoSansMath"}

// Urdu is the Nastaliq family used for Arabic-script names in Urdu.
const Urdu = "NotoNastaliqUrdu"

// File returns the file of family in weight w and whether it really is
// that weight: a family with no bold file gives its regular file and
// false (the renderer then emboldens it). Italic uses the regular file
// outside Latin. ok is false when no file of the family is available.
func (d *Dir) File(family string, w Weight) (file string, real bool, ok bool) {
	if w == Bold {
		if f := family + "-Bold.ttf"; d.Has(f) {
			return f, true, true
		}
	}
	if f := family + "-Regular.ttf"; d.Has(f) {
		return f, w != Bold, true
	}
	return "", false, false
}

// Face is one face of a font file: Index is the face number in a
// collection (.ttc), Family the family name it must have there ("" for a
// single-face file). Hangul and Kana restrict a face to those characters.
type Face struct {
	File   string
	Family string
	Bold   bool // the file is a bold face
	Hangul bool // use the face for Hangul only
}

// HanStyle is the regional style of Han characters.
type HanStyle string

// Han styles. The default is Simplified Chinese, the most common style
// among learners writing Han-only names; kana in a name selects Japanese
// and Hangul selects Korean whatever the setting.
const (
	HanJapanese    HanStyle = "ja"
	HanSimplified  HanStyle = "zh-Hans"
	HanTraditional HanStyle = "zh-Hant"
	HanKorean      HanStyle = "ko"
	DefaultHan              = HanSimplified
)

// ParseHanStyle validates a han-style setting ("" gives DefaultHan).
func ParseHanStyle(s string) (HanStyle, error) {
	switch HanStyle(s) {
	case "":
		return DefaultHan, nil
	case HanJapanese, HanSimplified, HanTraditional, HanKorean:
		return HanStyle(s), nil
	}
	return "", fmt.Errorf("han style %q: want ja, zh-Hans, zh-Hant or ko", s)
}

var cjkFamily = map[HanStyle]string{
	HanJapanese: "Noto Sans CJK JP", HanSimplified: "Noto Sans CJK SC",
	HanTraditional: "Noto Sans CJK TC", HanKorean: "Noto Sans CJK KR",
}

// Han returns the faces tried, in order, for Han, kana, Hangul and
// Bopomofo in style st and weight w: Noto Sans CJK (OpenType/CFF, in the
// style's face of the collection), then Hanazono Mincho A and B for the
// extension blocks Noto CJK lacks, then the embedded Droid Sans Fallback
// and Nanum Square (Hangul). Faces whose file is absent are left out.
func (d *Dir) Han(st HanStyle, w Weight) []Face {
	var out []Face
	cjk := "NotoSansCJK-Regular.ttc"
	bold := false
	if w == Bold && d.Has("NotoSansCJK-Bold.ttc") {
		cjk, bold = "NotoSansCJK-Bold.ttc", true
	}
	if d.Has(cjk) {
		out = append(out, Face{File: cjk, Family: cjkFamily[st], Bold: bold})
	}
	for _, f := range []string{"HanaMinA.ttf", "HanaMinB.ttf"} {
		if d.Has(f) {
			out = append(out, Face{File: f})
		}
	}
	if w == Bold {
		out = append(out, Face{File: "NanumSquareB.ttf", Hangul: true, Bold: true})
	} else {
		out = append(out, Face{File: "NanumSquareR.ttf", Hangul: true})
	}
	return append(out, Face{File: "DroidSansFallbackFull.ttf"})
}
