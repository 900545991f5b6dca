"""Who rates which story: balanced, connected rating designs for a human evaluation, and the measures that say how
well a design (the study's own included) can separate story effects from participant effects.

A design is built on a cycle of the stories in which the strata (temperatures, or sampler x temperature cells)
follow each other in a fixed order: a window of K consecutive stories then covers K different temperatures (every
temperature where K >= their number). The cycle is laid round as often as the ratings need, each round in a new
random order within each stratum, and cut into windows, one per participant: every story is then rated the same
number of times (at most one apart where the number of ratings is not a multiple of the number of stories), and the
rounds' different orders link participants across stories, so that the rater-story graph is connected and story
pairs share raters. Of several such random designs the one whose stories share raters most is kept. Each
participant's stories are shown in the order of a row of a Williams Latin square over their temperatures, so that
across participants every temperature appears equally often at every position and after every other."""

from __future__ import annotations

import math

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


class DesignError(ValueError):
    """A design that cannot be built; the message names the argument, what was found and what is allowed."""


def williams_rows(size: int) -> list[list[int]]:
    """The rows of a Williams Latin square of ``size`` (two squares, 2 x size rows, for an odd size): each entry
    appears once per row and per column position, and each ordered pair of neighbours equally often.

    Args:
        size: the number of treatments (positions).

    Returns:
        The rows, each a permutation of range(size).
    """
    first, low, high = [0], 1, size - 1
    while len(first) < size:
        first.append(low)
        low += 1
        if len(first) < size:
            first.append(high)
            high -= 1
    rows = [[(entry + shift) % size for entry in first] for shift in range(size)]
    return rows + [row[::-1] for row in rows] if size % 2 else rows


def _windows(strata: np.ndarray, participants: int, per_participant: int, rng: np.random.Generator) -> np.ndarray:
    """One random design: participants x per_participant story indices (no order yet)."""
    levels = np.unique(strata)
    members = [np.flatnonzero(strata == level) for level in levels]
    per_level = members[0].size
    needed = participants * per_participant
    rounds = math.ceil(needed / strata.size)
    sequence = []
    # Where K divides the number of strata L (K < L), every window would cover the same blocks of strata in every
    # round and the blocks would never meet: then each round starts the cycle one stratum further on. K divides the
    # round's length, so no window spans two rounds: each still covers K strata in a row, and each round still
    # holds every story once.
    count = len(levels)
    rotate = per_participant < count and count % per_participant == 0
    for round_index in range(rounds):
        shuffled = [rng.permutation(group) for group in members]
        shift = round_index if rotate else 0
        sequence.extend(shuffled[(level + shift) % count][slot] for slot in range(per_level) for level in range(count))
    sequence = np.asarray(sequence[:needed])
    design = sequence.reshape(participants, per_participant)
    # A window that spans two rounds can hold a story twice: swap the repeat with a story of the same stratum in
    # another participant's window where neither then holds a story twice (counts and strata stay as they were).
    for row in range(participants):
        for _ in range(per_participant):
            values, counts = np.unique(design[row], return_counts=True)
            if counts.max() == 1:
                break
            column = np.flatnonzero(design[row] == values[counts > 1][0])[-1]
            story = design[row, column]
            swapped = False
            for other in rng.permutation(participants):
                if other == row:
                    continue
                for other_column in np.flatnonzero(strata[design[other]] == strata[story]):
                    candidate = design[other, other_column]
                    if candidate not in design[row] and story not in design[other]:
                        design[row, column], design[other, other_column] = candidate, story
                        swapped = True
                        break
                if swapped:
                    break
            if not swapped:
                raise DesignError(
                    f"stories-per-participant: {per_participant} stories each from {strata.size} stories cannot "
                    "be given without repeats; allowed: fewer stories per participant"
                )
    return design


def unshared_pairs(design: np.ndarray, n_stories: int) -> tuple[int, int]:
    """How many story pairs no participant rated both of, and how many pairs there are.

    Args:
        design: one row per participant, the indices (0..n_stories-1) of the stories they rated; rows may be
            padded with -1 where participants rated different numbers of stories.
        n_stories: the number of stories.

    Returns:
        (unshared, total) story pairs.
    """
    incidence = np.zeros((design.shape[0], n_stories))
    for row, stories in enumerate(design):
        incidence[row, stories[stories >= 0]] = 1
    together = incidence.T @ incidence
    upper = np.triu_indices(n_stories, k=1)
    return int((together[upper] == 0).sum()), len(upper[0])


def is_connected(design: np.ndarray, n_stories: int) -> bool:
    """Whether the rater-story graph (participants and stories, linked by ratings) is one component, so that
    participant and story effects are all estimated against each other.

    Args:
        design: one row per participant, story indices (-1 = padding).
        n_stories: the number of stories.

    Returns:
        True when connected.
    """
    rows, columns = np.nonzero(design >= 0)
    stories = design[rows, columns]
    size = design.shape[0] + n_stories
    graph = coo_matrix((np.ones(rows.size), (rows, design.shape[0] + stories)), shape=(size, size))
    used = np.zeros(size, dtype=bool)
    used[: design.shape[0]] = True
    used[design.shape[0] + np.unique(stories)] = True
    count, labels = connected_components(graph, directed=False)
    return np.unique(labels[used]).size == 1


def balanced_design(
    strata: list | np.ndarray,
    participants: int,
    per_participant: int,
    seed: int = 0,
    tries: int = 5,
    steps: int = 3000,
) -> np.ndarray:
    """A balanced, connected design with counterbalanced order (see the module's docstring).

    Args:
        strata: one label per story (its temperature, or sampler x temperature cell); every stratum must hold the
            same number of stories, and the labels' sort order is the order the cycle follows.
        participants: the number of participants (at least 2).
        per_participant: stories each participant rates (at least 1, at most the number of stories).
        seed: the random seed; the same seed gives the same design.
        tries: random designs drawn; the connected one with the fewest story pairs sharing no rater is kept.
        steps: swaps tried afterwards to spread the pairs further (``spread_pairs``).

    Returns:
        participants x per_participant story indices, each row in its presentation order.
    """
    strata = np.asarray(strata)
    _, codes, sizes = np.unique(strata, return_inverse=True, return_counts=True)
    if participants < 2:
        raise DesignError(
            f"participants: {participants}; allowed: at least 2 (participant and story effects need several raters)"
        )
    if not 1 <= per_participant <= strata.size:
        raise DesignError(
            f"stories-per-participant: {per_participant}; allowed: 1 to the number of stories ({strata.size})"
        )
    if sizes.min() != sizes.max():
        raise DesignError(
            f"stories-per-temperature: the strata hold {sizes.min()} to {sizes.max()} stories; "
            "allowed: the same number in every stratum"
        )
    rng = np.random.default_rng(seed)
    best, best_unshared = None, None
    for _ in range(tries):
        design = _windows(codes, participants, per_participant, rng)
        if not is_connected(design, strata.size):
            continue
        unshared, _ = unshared_pairs(design, strata.size)
        if best is None or unshared < best_unshared:
            best, best_unshared = design, unshared
    if best is None:
        raise DesignError(
            f"participants x stories-per-participant: {participants} x {per_participant} ratings of "
            f"{strata.size} stories leave the raters and stories in separate groups; allowed: more "
            "participants or stories per participant"
        )
    improved = spread_pairs(best, codes, rng, steps)
    if is_connected(improved, strata.size):
        best = improved
    return counterbalance(best, codes, rng)


def spread_pairs(design: np.ndarray, codes: np.ndarray, rng: np.random.Generator, steps: int) -> np.ndarray:
    """Random swaps of two same-stratum stories between two participants, each kept where it leaves no fewer
    story pairs sharing a rater (a hill climb): counts per story and strata per participant stay as they were.

    Args:
        design: participants x K story indices.
        codes: each story's stratum code.
        rng: the random generator.
        steps: swaps tried.

    Returns:
        The improved design (a copy).
    """
    design = design.copy()
    n_stories = codes.size
    together = np.zeros((n_stories, n_stories), dtype=np.int64)
    for stories in design:
        together[np.ix_(stories, stories)] += 1
    participants, width = design.shape
    strata = codes[design]  # a swap keeps every participant's strata
    rows = rng.integers(participants, size=steps)
    others = rng.integers(participants - 1, size=steps)
    others += others >= rows
    columns = rng.integers(width, size=steps)
    draws = rng.random(steps)
    for row, other, column, draw in zip(rows, others, columns, draws):
        story = design[row, column]
        matches = np.flatnonzero(strata[other] == strata[row, column])
        if matches.size == 0:
            continue
        other_column = matches[int(draw * matches.size)]
        candidate = design[other, other_column]
        if candidate in design[row] or story in design[other]:
            continue
        rest_row = np.concatenate((design[row, :column], design[row, column + 1 :]))
        rest_other = np.concatenate((design[other, :other_column], design[other, other_column + 1 :]))
        touched = np.union1d(rest_row, rest_other)
        new_story, new_candidate = together[story].copy(), together[candidate].copy()
        new_story[rest_row] -= 1
        new_story[rest_other] += 1
        new_candidate[rest_row] += 1
        new_candidate[rest_other] -= 1
        before = np.count_nonzero(together[story, touched] == 0) + np.count_nonzero(together[candidate, touched] == 0)
        after = np.count_nonzero(new_story[touched] == 0) + np.count_nonzero(new_candidate[touched] == 0)
        if after <= before:
            design[row, column], design[other, other_column] = candidate, story
            together[story], together[:, story] = new_story, new_story
            together[candidate], together[:, candidate] = new_candidate, new_candidate
    return design


def counterbalance(design: np.ndarray, codes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each participant's stories in a counterbalanced order. Where every participant sees each stratum equally
    often (K a multiple of the number of strata), participant i gets row i of a Williams Latin square over their
    stories sorted by stratum (ties in random order): every stratum equally often at every position and after
    every other. Otherwise the participants' subsets differ, and each participant in turn gets the order that
    puts their strata where they have been least often so far (an assignment problem; ties at random).

    Args:
        design: participants x K story indices.
        codes: each story's stratum code (0..).
        rng: random generator for the ties.

    Returns:
        The design with every row reordered.
    """
    from scipy.optimize import linear_sum_assignment

    n_codes = int(codes.max()) + 1
    width = design.shape[1]
    ordered = np.empty_like(design)
    if width % n_codes == 0:
        rows = williams_rows(width)
        for participant, stories in enumerate(design):
            ranked = stories[np.lexsort((rng.random(stories.size), codes[stories]))]
            ordered[participant] = ranked[rows[participant % len(rows)]]
        return ordered
    shown = np.zeros((n_codes, width))
    for participant, stories in enumerate(design):
        cost = shown[codes[stories]] + rng.random((width, width)) * 0.1
        story_rows, positions = linear_sum_assignment(cost)
        ordered[participant, positions] = stories[story_rows]
        shown[codes[stories[story_rows]], positions] += 1
    return ordered


def ratings_per_story(design: np.ndarray, n_stories: int) -> np.ndarray:
    """How many participants rated each story.

    Args:
        design: participants x K story indices (-1 = padding).
        n_stories: the number of stories.

    Returns:
        One count per story.
    """
    return np.bincount(design[design >= 0], minlength=n_stories)
