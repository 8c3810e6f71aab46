"""trocr-chinese's character-level text: decoding ids with a vocab.json, and the edit distance
behind the character error rate. Shared by the trainer and the HF evaluation script."""


def char_decode(ids, vocab, inverse=None):
    """trocr-chinese's decode: stop at </s>, drop <s>, <pad> and <unk>."""
    inverse = inverse or {i: t for t, i in vocab.items()}
    skipped = {vocab["<s>"], vocab["<pad>"], vocab["<unk>"]}
    text = []
    for token in ids:
        if token == vocab["</s>"]:
            break
        if token not in skipped:
            text.append(inverse[token])
    return "".join(text)


def edit_distance(a, b):
    """Levenshtein distance between two strings, character by character."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        previous, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (ca != cb))
    return row[len(b)]
