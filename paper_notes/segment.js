/*
 * paper-notes: cut a run of Han characters into words the way jieba (0.42, accurate mode with
 * HMM) cut the search index at build time. Written for this site from jieba's algorithm; the
 * build (paper_notes/search.py) fills in the dictionary and HMM tables, restricted to the
 * characters and words of the site's own text, with log probabilities computed in Python.
 *
 *   1. Word graph: from each character, every dictionary word that starts there.
 *   2. Route: from the end backwards, the path with the largest sum of log probabilities
 *      (ties go to the longer word, as Python's max over (score, end) tuples does).
 *   3. Characters left alone on the route, two or more in a row and not a word together, are
 *      cut by the hidden Markov model (states B, M, E, S; Viterbi, ties as in Python).
 *
 * Defines self.paperNotesSegment(run) -> string[].
 */
self.paperNotesSegment = (function () {
  "use strict"
  const data = __SEGMENTER_DATA__
  const MIN_FLOAT = -3.14e100
  const PREVIOUS = { B: "ES", M: "MB", S: "SE", E: "BM" }
  const STATES = "BMES"
  const words = new Map(Object.entries(data.words))
  const HAN_BLOCK = /[\u4e00-\u9fd5]+/g  // jieba's own range; other Han characters stand alone

  function graph(text) {
    const ends = []
    for (let k = 0; k < text.length; k++) {
      const here = []
      for (let i = k; i < text.length && i < k + data.max_length; i++)
        if (words.has(text.slice(k, i + 1)))
          here.push(i)
      ends.push(here.length ? here : [k])
    }
    return ends
  }

  function route(text, ends) {
    const best = new Array(text.length + 1)
    best[text.length] = [0, 0]
    for (let k = text.length - 1; k >= 0; k--) {
      let top = null
      for (const x of ends[k]) {
        const word = text.slice(k, x + 1)
        const score = (words.has(word) ? words.get(word) : data.single) + best[x + 1][0]
        if (top === null || score > top[0] || (score === top[0] && x > top[1]))
          top = [score, x]
      }
      best[k] = top
    }
    return best
  }

  function emit(state, char) {
    const p = data.emit[state][char]
    return p === undefined ? MIN_FLOAT : p
  }

  function transition(from, to) {
    const p = data.trans[from][to]
    return p === undefined ? MIN_FLOAT : p
  }

  function hmm(text) {
    let score = {}
    let path = {}
    for (const y of STATES) {
      score[y] = data.start[y] + emit(y, text[0])
      path[y] = [y]
    }
    for (let t = 1; t < text.length; t++) {
      const nextScore = {}
      const nextPath = {}
      for (const y of STATES) {
        const e = emit(y, text[t])
        let top = null
        for (const y0 of PREVIOUS[y]) {
          const p = score[y0] + transition(y0, y) + e
          if (top === null || p > top[0] || (p === top[0] && y0 > top[1]))
            top = [p, y0]
        }
        nextScore[y] = top[0]
        nextPath[y] = path[top[1]].concat(y)
      }
      score = nextScore
      path = nextPath
    }
    const states = path[score.E > score.S ? "E" : "S"]
    const out = []
    let begin = 0
    let next = 0
    for (let i = 0; i < text.length; i++) {
      if (states[i] === "B") {
        begin = i
      } else if (states[i] === "E") {
        out.push(text.slice(begin, i + 1))
        next = i + 1
      } else if (states[i] === "S") {
        out.push(text[i])
        next = i + 1
      }
    }
    if (next < text.length)
      out.push(text.slice(next))
    return out
  }

  function flush(buffer, out) {
    if (buffer.length === 1)
      out.push(buffer)
    else if (!words.has(buffer))
      out.push(...hmm(buffer))
    else
      out.push(...buffer)
  }

  function cutBlock(text) {
    const best = route(text, graph(text))
    const out = []
    let buffer = ""
    for (let x = 0; x < text.length;) {
      const y = best[x][1] + 1
      const word = text.slice(x, y)
      if (y - x === 1) {
        buffer += word
      } else {
        if (buffer)
          flush(buffer, out)
        buffer = ""
        out.push(word)
      }
      x = y
    }
    if (buffer)
      flush(buffer, out)
    return out
  }

  return function segment(run) {
    const out = []
    let last = 0
    for (const match of run.matchAll(HAN_BLOCK)) {
      out.push(...Array.from(run.slice(last, match.index)))
      out.push(...cutBlock(match[0]))
      last = match.index + match[0].length
    }
    out.push(...Array.from(run.slice(last)))
    return out
  }
})()
