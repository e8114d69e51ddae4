"""The thresholds of the polytope labelling (geomtoy.geometry.polytopes.analyze), each with
the trained models that fix it. Changing one needs `geomtoy analyze`, no retraining.

Calibration: models trained with `geomtoy.engine.train` (10,000 steps, AdamW 1e-3, batch 1024).
n=5, m=2, uniform importance, feature probability
0.05, 8 seeds: 7 pentagons (norm spread <= 1.1%, cosine error <= 0.009, D_i 0.400) and
one seed with 2 digons; clean factors of n=200, m=20 and n=400, m=30 had norm spread
<= 1.7%, cosine error <= 0.025 and extra singular values <= 0.09 x the largest. The
notebook's feature-geometry recipe (sweep feature_geometry, n=200, m=20, best of 2
seeds) reads, by 1/(1-S): 1.60 "5 triangle + 1 other (11 in 9-D)" (the other: pairs at
cos -0.77 between the triangle and digon phases), 1.88-3.53 all digons, 4.13 "2
pentagon + 16 digon", 4.84 "3 pentagon + 13 digon + 1 other (14 in 5-D)" (digons and
pentagons meeting some twenty features each at |cos| 0.1-0.26), and from 5.67 on one
tangle of 62-135 features in 20-D with no gap between its links: `other`.
"""

REPRESENTED_NORM = 0.5
"""A feature is represented iff ``||W_i|| > 0.5`` (docs/paper.md, checks).

Trained represented features have norms near 1 (pentagons 1.13, digons 1.0-1.04),
dropped ones decay towards 0 under weight decay (<= 0.02 in the dense 0.9^i model);
0.5 sits in the middle of that gap. In the dense uniform regime with n >> m no feature
passes it (the rank-m solution is spread over all n features, §5.1), so such models are
all `not_represented`, as intended."""

LINK_COS = 0.05
"""Two represented features interfere, i.e. share a tegum factor, iff ``|cos| > 0.05``.

Features in different tegum factors are ideally orthogonal; the checks of docs/paper.md call
``|cos| < 0.05`` orthogonal. In the trained models of the calibration, clean factors
(digons, triangles, pentagons) met each other at |cos| <= 0.035, while weakly
interfering structures sat at |cos| >= 0.073 (11 antipodal pairs in 10 dimensions at
|cos| = 0.1): the threshold lies in that gap. Inside every polytope of the vocabulary
each feature has neighbours at |cos| >= 0.31, so every polytope stays connected."""

NORM_RTOL = 0.1
"""Norm spread a careful reader calls equal: ``max/min - 1 <= 0.1`` (reported, not a check).

Labels come from directions only (geometry v3): a factor's norm spread is its own column
(`Geometry.norm_spread`), so unequal norms never hide a polytope. Trained polytopes had
norm spreads <= 1.7% (pentagons 1.13 +- 0.01); the non-uniform pentagon of §5.2 shows
its deformation in its directions as well, which the checks below read."""

COS_RMS_TOL = 0.05
"""A 3-D polytope, simplex or digon is named when the RMS of its best-matched cosine
errors (its `fit_error`) is at most 0.05 ...

So every cosine moved by up to 0.05 (about 3 degrees at right angles) always passes;
for a digon, one cosine, RMS and worst are the same number (cos <= -0.95).

Calibration: trained polytopes had cosine errors <= 0.025 (pentagons <= 0.01); the
trained square antiprisms of issue 25 (n=120, m=12 at 1/(1-S) = 4 and 5; n=200, m=20
at 4.1) sit 0.02 RMS from the ideal (measured here: 0.026 at 1/(1-S) = 4.13, n=200,
m=20); the Coulomb (Thomson) antiprism, height 0.560, is 0.025 RMS (0.039 worst) from
the tight-frame ideal, height 1/sqrt(3), so both are square antiprisms. Hand-built
vocabulary polytopes with every cosine moved by up to 0.05 (tests/test_geometry_v3.py)
are at most 0.05 RMS away by construction. Eight random directions in 3-D are >= 0.26
RMS from the square antiprism and the cube (2,000 draws); a random Gaussian W never
passes (its leaks exceed `LEAK_MAX`)."""

COS_MAX_TOL = 0.08
"""... and its worst best-matched cosine is within 0.08 of the ideal.

0.08 is 5 degrees at right angles (for a digon, one cosine, the RMS bound decides:
cos <= -0.95 is 18 degrees from antipodal). The trained antiprisms
above had one cosine off by 0.052; perturbations of up to 0.05 per cosine pass; a
tilted trained triangle, cosines 0.055 off with a third singular value 0.23 x the largest,
is rejected by `RANK_RTOL`, not here."""

GAP_RTOL = 0.15
"""A regular k-gon in 2-D is named when every angular gap between consecutive members,
around the plane the factor spans, is within 0.15 x 360/k of 360/k.

A person reads a polygon by its gaps, not by its far cosines: a pentagon with gaps of
68-76 degrees (the five longest features of the double-descent sweep at T = 2,560) is a
pentagon. 0.15 x 72 = 10.8 degrees for pentagons, 18 for triangles, 6.75 for octagons.
Trained pentagons had gaps 72.0 +- 0.3 degrees (n=5, m=2) and 70-74 (T = 2,560); a k-gon
whose cosines move by up to 0.05 moves each gap by at most 0.05 / sin(360/k) radians (4
degrees for the octagon, 9% of its gap). Irregular rings stay `other`: gaps of 30 to 110
degrees (a pentagon 58% off), 60/90/50/90/70 (31% off), a hexagon at 50/70/60 (17% off).
A weak leak widens the gap tolerance by the gap change of the widened cosine tolerance,
``1.5 l^2 / sin(360/k)`` radians."""

POINT_REPRESENTED_RTOL = 0.5
"""A training point counts in the data-point geometry when its hidden vector is longer
than 0.5 x the longest one of its training set; shorter points are left out
(`not_represented`), as a person reading the plot leaves out the points at the origin
and the ones the model gave up on (`geomtoy.geometry.samples.point_geometry`).

It is the features' cut (`REPRESENTED_NORM` = 0.5 next to stored norms of about 1),
relative because the hidden vectors' scale is the model's. Double-descent sweep, default
scale, m = 2: at T = 6 the best seed stores five points at norms 0.75-1.0 (gaps 65-82
degrees, a pentagon) and squeezes a sixth at 0.48 into one gap; at T = 12 the two points
given up sit at 0.08 and 0.01; at T = 3 all three points are stored (norms 0.96-1.0)."""

RANK_RTOL = 0.2
"""A factor spans the directions whose singular value exceeds 0.2 x the largest.

Every polytope of the vocabulary is a tight frame: its nonzero singular values are all
equal. In trained polytopes the extra singular values stayed <= 0.09 x the largest, so
the count is the polytope's dimension, while a lifted or tilted configuration (0.23
in the tilted triangle above) counts an extra dimension."""

INTERFERENCE_MAX = 0.25
"""A lone feature is `dedicated` only if the weak features give it at most 0.25 of
interference, ``sum_{j not represented} (W^_i . W_j)^2 / ||W_i||^2 <= 0.25``, and all
other features together at most 0.25 (D_i >= 0.8).

Geometry v3 reads polytopes of k >= 2 from their members' directions alone: weak
features lower their D_i (a column) but hide no shape. The five long features of the
double-descent sweep at T >= 338 (m = 2) form pentagons with gaps of 71-73 degrees
while 195 weak features (norms <= 0.47) give each 0.41-0.94; geometry v2 applied the
bound to every member and called them `other (5 in 2-D)`.

In the dense uniform regime a lone feature of norm > 0.5 can share its direction with
dozens of weak ones (interference ~ 3, D_i ~ 0.25, seen at n=100, m=10, 1-S = 1): it is
no dedicated dimension. In trained sparse models the weak features give <= 0.01. A
lone feature has no shape to check, so it is `dedicated` only if all other features
together give it at most 0.25 (D_i >= 0.8): at 1/(1-S) = 1.37 (n=200, m=20) lone
features at D_i = 0.71 are not.
Interference among represented features is what the leak measures instead: at 1/(1-S)
= 4.84 (n=200, m=20) antipodal pairs at cos -0.999 meet some twenty other features at
|cos| 0.1-0.25, which lowers their D_i to 0.37, yet they are digons."""

SEPARATION = 1.5
"""The cosine and rank tolerances widen with a candidate's leak only when its weakest
internal link is at least 2 x its leak: a piece linked to the rest about as strongly as
inside (four vertices of a 4-simplex, leak = internal |cos| = 0.25) is no weakly
linked polytope and must match as it stands."""

LEAK_MAX = 0.3
"""A factor links to the rest at |cos| <= 0.3 (its leak); a lone feature with a
stronger link is no dedicated dimension.

Tegum factors are nearly orthogonal: trained weakly linked factors had leaks <= 0.26
(digons at 1/(1-S) = 4.84, n=200, m=20), <= 0.22 (triangles, n=100, m=10) and <= 0.21
(cross-set octahedra), while three antipodal pairs at uneven angles in one plane meet
at |cos| 0.64: no tegum product, `other`."""

LEAN_MAX = 0.25
"""The leak up to which the cosine and rank tolerances grow with it (see `polytopes.analyze`).

A trained triangle whose members interfere at |cos| = 0.2 with one outside feature
(n=100, m=10, 1-S = 0.66) leans towards it: its cosines are -0.43 instead of -0.5 and
its third singular value is 0.29 x the largest, as a lift by 0.2 predicts (1.5 x 0.04
and sqrt(2) x 0.2). Beyond 0.25 (cosine tolerance 0.14, rank tolerance 0.55) the checks
stop widening: a larger leak is no weak interference."""
