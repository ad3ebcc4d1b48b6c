package modelgen

import (
	"fmt"
	"strings"
)

// Token types of tokenizer.ggml.token_type (llama.cpp's LLAMA_TOKEN_TYPE_*).
const (
	TokenNormal  int32 = 1
	TokenUnknown int32 = 2
	TokenControl int32 = 3
	TokenByte    int32 = 6
)

// Special token ids, as in Llama 2's SentencePiece vocabulary.
const (
	UnkID = 0
	BOSID = 1
	EOSID = 2
)

// spaceMark is SentencePiece's word-boundary marker U+2581.
const spaceMark = "▁"

// commonWords seed the vocabulary with realistic word pieces.
var commonWords = strings.Fields(`
the of and to a in is it you that he was for on are with as I his they be at
one have this from or had by hot but some what there we can out other were all
your when up use word how said an each she which do their time if will way about
many then them would write like so these her long make thing see him two has look
more day could go come did my sound no most number who over know water than call
first people may down side been now find any new work part take get place made
live where after back little only round man year came show every good me give our
under name very through just form much great think say help low line before turn
cause same mean differ move right boy old too does tell sentence set three want air
well also play small end put home read hand port large spell add even land here
must big high such follow act why ask men change went light kind off need house
picture try us again animal point mother world near build self earth father head
stand own page should country found answer school grow study still learn plant
cover food sun four thought let keep eye never last door between city tree cross
since hard start might story saw far sea draw left late run while press close night
real life few stop open seem together next white children begin got walk example
ease paper often always music those both mark book letter until mile river car feet
care second group carry took rain eat room friend began idea fish mountain north once
base hear horse cut sure watch color face wood main enough plain girl usual young
ready above ever red list though feel talk bird soon body dog family direct pose
leave song measure state product black short numeral class wind question happen
complete ship area half rock order fire south problem piece told knew pass farm top
whole king size heard best hour better true during hundred am remember step early
hold west ground interest reach fast five sing listen six table travel less morning
ten simple several vowel toward war lay against pattern slow center love person money
serve appear road map science rule govern pull cold notice voice fall power town fine
certain fly unit lead cry dark machine note wait plan figure star box noun field rest
correct able pound done beauty drive stood contain front teach week final gave green
oh quick develop sleep warm free minute strong special mind behind clear tail produce
fact street inch lot nothing course stay wheel full force blue object decide surface
deep moon island foot yet busy test record boat common gold possible plane age dry
wonder laugh thousand ago ran check game shape yes cool miss brought heat snow bed
bring sit perhaps fill east weight language among`)

// punctuation and symbols every tokenizer needs as single pieces.
const singles = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,!?'\";:-()[]{}/\\@#$%^&*_+=<>|~`"

// Vocabulary returns the tokenizer of a SentencePiece-style ("llama")
// vocabulary of exactly spec.Vocab unique tokens: <unk>, <s>, </s>, the 256
// byte tokens <0x00>..<0xFF>, then pieces (▁, single characters, ▁-words
// and their prefixes, then deterministic letter strings as padding). With a
// chat template the last two ids are the control tokens <|im_start|> and
// <|im_end|>. Scores decrease with rank, as SentencePiece log-probabilities do.
func Vocabulary(spec Spec) (tokens []string, scores []float32, types []int32, err error) {
	var control []string
	if spec.ChatTemplate != "" {
		control = []string{"<|im_start|>", "<|im_end|>"}
	}
	minVocab := 3 + 256 + 1 + len(control)
	if spec.Vocab < minVocab {
		return nil, nil, nil, fmt.Errorf("modelgen: vocab %d is too small, need at least %d", spec.Vocab, minVocab)
	}
	tokens = make([]string, 0, spec.Vocab)
	scores = make([]float32, 0, spec.Vocab)
	types = make([]int32, 0, spec.Vocab)
	seen := make(map[string]bool, spec.Vocab)
	add := func(tok string, score float32, typ int32) {
		seen[tok] = true
		tokens = append(tokens, tok)
		scores = append(scores, score)
		types = append(types, typ)
	}
	add("<unk>", 0, TokenUnknown)
	add("<s>", 0, TokenControl)
	add("</s>", 0, TokenControl)
	for b := 0; b < 256; b++ {
		add(fmt.Sprintf("<0x%02X>", b), 0, TokenByte)
	}
	nPieces := spec.Vocab - len(tokens) - len(control)
	rank := 0
	addPiece := func(p string) {
		if len(tokens) >= 3+256+nPieces || seen[p] {
			return
		}
		rank++
		add(p, -float32(rank), TokenNormal)
	}
	addPiece(spaceMark)
	for _, c := range singles {
		addPiece(string(c))
	}
	for _, c := range "abcdefghijklmnopqrstuvwxyzAIT" {
		addPiece(spaceMark + string(c))
	}
	for _, w := range commonWords {
		word := []rune(spaceMark + w)
		for n := 2; n <= len(word); n++ {
			addPiece(string(word[:n]))
		}
	}
	for _, w := range commonWords {
		addPiece(spaceMark + strings.ToUpper(w[:1]) + w[1:])
		addPiece(w)
	}
	// Padding: letter strings of growing length, with and without ▁.
	for k := 0; len(tokens) < 3+256+nPieces; k++ {
		s := letters(k)
		addPiece(s)
		addPiece(spaceMark + s)
	}
	for _, c := range control {
		add(c, 0, TokenControl)
	}
	return tokens, scores, types, nil
}

// letters returns the k-th string in the sequence a..z, aa..zz, aaa..
func letters(k int) string {
	n := 1
	span := 26
	for k >= span {
		k -= span
		n++
		span *= 26
	}
	b := make([]byte, n)
	for i := n - 1; i >= 0; i-- {
		b[i] = byte('a' + k%26)
		k /= 26
	}
	return string(b)
}
