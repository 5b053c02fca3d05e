//! The Porter stemmer (M. F. Porter, "An algorithm for suffix stripping", 1980), in the form of
//! the author's reference implementation (which uses `bli -> ble` and adds `logi -> log`).
//!
//! Why stem at all: tool descriptions and queries say the same thing in different inflections
//! ("converts"/"convert", "searching"/"search", "files"/"file"). Why Porter and not a crate:
//! it is a hundred-odd lines, has no data tables, and its behaviour on identifiers is
//! predictable. It works on lowercase ASCII words; anything else is returned unchanged.

/// Stems one lowercase word. Words of two letters or fewer, and words with anything other
/// than ASCII lowercase letters, are returned unchanged.
pub fn stem(word: &str) -> String {
    stem_owned(word.to_owned())
}

/// [`stem`], reusing `word`'s buffer (the tokenizer already owns its lowercased word).
pub(crate) fn stem_owned(word: String) -> String {
    if word.len() <= 2 || !word.bytes().all(|c| c.is_ascii_lowercase()) {
        return word;
    }
    let mut w = Word {
        b: word.into_bytes(),
    };
    w.step1a();
    w.step1b();
    w.step1c();
    w.step2();
    w.step3();
    w.step4();
    w.step5();
    String::from_utf8(w.b).expect("the steps only write ASCII letters")
}

struct Word {
    b: Vec<u8>,
}

impl Word {
    /// Is `b[i]` a consonant? `y` is a consonant at the start or after a vowel.
    fn cons(&self, i: usize) -> bool {
        match self.b[i] {
            b'a' | b'e' | b'i' | b'o' | b'u' => false,
            b'y' => i == 0 || !self.cons(i - 1),
            _ => true,
        }
    }

    /// The measure m of `b[..len]`: the number of vowel-consonant sequences in `[C](VC)^m[V]`.
    fn measure(&self, len: usize) -> usize {
        let mut m = 0;
        let mut i = 0;
        while i < len && self.cons(i) {
            i += 1;
        }
        loop {
            while i < len && !self.cons(i) {
                i += 1;
            }
            if i >= len {
                return m;
            }
            while i < len && self.cons(i) {
                i += 1;
            }
            m += 1;
        }
    }

    /// Does `b[..len]` contain a vowel?
    fn has_vowel(&self, len: usize) -> bool {
        (0..len).any(|i| !self.cons(i))
    }

    /// Does `b[..len]` end in a double consonant?
    fn double_cons(&self, len: usize) -> bool {
        len >= 2 && self.b[len - 1] == self.b[len - 2] && self.cons(len - 1)
    }

    /// Does `b[..len]` end consonant-vowel-consonant, the last not `w`, `x` or `y`?
    fn cvc(&self, len: usize) -> bool {
        len >= 3
            && self.cons(len - 1)
            && !self.cons(len - 2)
            && self.cons(len - 3)
            && !matches!(self.b[len - 1], b'w' | b'x' | b'y')
    }

    fn ends(&self, suffix: &str) -> bool {
        self.b.ends_with(suffix.as_bytes())
    }

    /// Length of the stem left when `suffix` (which the word ends with) is removed.
    fn stem_len(&self, suffix: &str) -> usize {
        self.b.len() - suffix.len()
    }

    fn replace(&mut self, suffix: &str, with: &str) {
        let n = self.stem_len(suffix);
        self.b.truncate(n);
        self.b.extend_from_slice(with.as_bytes());
    }

    /// Steps 2 and 3: the first rule whose suffix matches decides; it fires when the stem's
    /// measure exceeds `min_m`.
    fn rules(&mut self, rules: &[(&str, &str)], min_m: usize) {
        if let Some(&(suffix, with)) = rules.iter().find(|(s, _)| self.ends(s))
            && self.measure(self.stem_len(suffix)) > min_m
        {
            self.replace(suffix, with);
        }
    }

    fn step1a(&mut self) {
        if self.ends("sses") || self.ends("ies") {
            let n = self.b.len();
            self.b.truncate(n - 2);
        } else if self.ends("ss") {
        } else if self.ends("s") {
            self.b.pop();
        }
    }

    fn step1b(&mut self) {
        if self.ends("eed") {
            if self.measure(self.stem_len("eed")) > 0 {
                self.b.pop();
            }
            return;
        }
        let suffix = if self.ends("ed") {
            "ed"
        } else if self.ends("ing") {
            "ing"
        } else {
            return;
        };
        if !self.has_vowel(self.stem_len(suffix)) {
            return;
        }
        self.replace(suffix, "");
        let n = self.b.len();
        if self.ends("at") || self.ends("bl") || self.ends("iz") {
            self.b.push(b'e');
        } else if self.double_cons(n) && !matches!(self.b[n - 1], b'l' | b's' | b'z') {
            self.b.pop();
        } else if self.measure(n) == 1 && self.cvc(n) {
            self.b.push(b'e');
        }
    }

    fn step1c(&mut self) {
        let n = self.b.len();
        if self.ends("y") && self.has_vowel(n - 1) {
            self.b[n - 1] = b'i';
        }
    }

    fn step2(&mut self) {
        const RULES: &[(&str, &str)] = &[
            ("ational", "ate"),
            ("tional", "tion"),
            ("enci", "ence"),
            ("anci", "ance"),
            ("izer", "ize"),
            ("bli", "ble"),
            ("alli", "al"),
            ("entli", "ent"),
            ("eli", "e"),
            ("ousli", "ous"),
            ("ization", "ize"),
            ("ation", "ate"),
            ("ator", "ate"),
            ("alism", "al"),
            ("iveness", "ive"),
            ("fulness", "ful"),
            ("ousness", "ous"),
            ("aliti", "al"),
            ("iviti", "ive"),
            ("biliti", "ble"),
            ("logi", "log"),
        ];
        self.rules(RULES, 0);
    }

    fn step3(&mut self) {
        const RULES: &[(&str, &str)] = &[
            ("icate", "ic"),
            ("ative", ""),
            ("alize", "al"),
            ("iciti", "ic"),
            ("ical", "ic"),
            ("ful", ""),
            ("ness", ""),
        ];
        self.rules(RULES, 0);
    }

    /// Step 4: the first suffix that matches decides; it goes when the stem's measure exceeds 1.
    fn step4(&mut self) {
        const SUFFIXES: &[&str] = &[
            "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ion",
            "ou", "ism", "ate", "iti", "ous", "ive", "ize",
        ];
        let Some(&suffix) = SUFFIXES.iter().find(|s| self.ends(s)) else {
            return;
        };
        let n = self.stem_len(suffix);
        // `ion` only goes after `s` or `t`.
        let ok = suffix != "ion" || (n > 0 && matches!(self.b[n - 1], b's' | b't'));
        if ok && self.measure(n) > 1 {
            self.b.truncate(n);
        }
    }

    fn step5(&mut self) {
        let n = self.b.len();
        if self.ends("e") {
            let m = self.measure(n - 1);
            if m > 1 || (m == 1 && !self.cvc(n - 1)) {
                self.b.pop();
            }
        }
        let n = self.b.len();
        if self.ends("l") && self.double_cons(n) && self.measure(n) > 1 {
            self.b.pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::stem;

    fn check(pairs: &[(&str, &str)]) {
        for &(word, want) in pairs {
            assert_eq!(stem(word), want, "stem({word:?})");
        }
    }

    #[test]
    fn step1_examples_from_the_paper() {
        check(&[
            ("caresses", "caress"),
            ("ponies", "poni"),
            ("ties", "ti"),
            ("caress", "caress"),
            ("cats", "cat"),
            ("feed", "feed"),
            ("agreed", "agre"),
            ("plastered", "plaster"),
            ("bled", "bled"),
            ("motoring", "motor"),
            ("sing", "sing"),
            ("conflated", "conflat"),
            ("troubled", "troubl"),
            ("sized", "size"),
            ("hopping", "hop"),
            ("tanned", "tan"),
            ("falling", "fall"),
            ("hissing", "hiss"),
            ("fizzed", "fizz"),
            ("failing", "fail"),
            ("filing", "file"),
            ("happy", "happi"),
            ("sky", "sky"),
        ]);
    }

    #[test]
    fn later_steps_examples_from_the_paper() {
        check(&[
            ("relational", "relat"),
            ("conditional", "condit"),
            ("rational", "ration"),
            ("valenci", "valenc"),
            ("digitizer", "digit"),
            ("differently", "differ"),
            ("vileli", "vile"),
            ("analogousli", "analog"),
            ("vietnamization", "vietnam"),
            ("predication", "predic"),
            ("operator", "oper"),
            ("feudalism", "feudal"),
            ("decisiveness", "decis"),
            ("hopefulness", "hope"),
            ("callousness", "callous"),
            ("formaliti", "formal"),
            ("sensitiviti", "sensit"),
            ("sensibiliti", "sensibl"),
            ("triplicate", "triplic"),
            ("formative", "form"),
            ("formalize", "formal"),
            ("electriciti", "electr"),
            ("electrical", "electr"),
            ("hopeful", "hope"),
            ("goodness", "good"),
            ("revival", "reviv"),
            ("allowance", "allow"),
            ("inference", "infer"),
            ("airliner", "airlin"),
            ("adjustable", "adjust"),
            ("defensible", "defens"),
            ("irritant", "irrit"),
            ("replacement", "replac"),
            ("adjustment", "adjust"),
            ("dependent", "depend"),
            ("adoption", "adopt"),
            ("communism", "commun"),
            ("activate", "activ"),
            ("angulariti", "angular"),
            ("homologous", "homolog"),
            ("effective", "effect"),
            ("bowdlerize", "bowdler"),
            ("probate", "probat"),
            ("rate", "rate"),
            ("cease", "ceas"),
            ("controll", "control"),
            ("roll", "roll"),
            ("generalizations", "gener"),
            ("oscillators", "oscil"),
        ]);
    }

    #[test]
    fn inflections_meet() {
        for group in [
            &["search", "searches", "searching", "searched"][..],
            &["convert", "converts", "converting", "converted"][..],
            &["file", "files"][..],
            &["connection", "connections", "connected", "connecting"][..],
        ] {
            let first = stem(group[0]);
            for w in &group[1..] {
                assert_eq!(stem(w), first, "{w} vs {}", group[0]);
            }
        }
    }

    #[test]
    fn leaves_short_and_non_ascii_words_alone() {
        check(&[("is", "is"), ("as", "as"), ("mp3", "mp3"), ("café", "café")]);
    }
}
