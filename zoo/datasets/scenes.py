"""Procedurally rendered scenes with exact per-pixel depth (numpy only).

A scene is a camera and a list of primitives: infinite planes (ground,
floor, ceiling, walls, a distant backdrop with sky above it), boxes (also
thin panels), spheres, vertical cylinders and cones. Every surface is
textured with a crop of a material-like image that ships with
scikit-image (brick, gravel, grass, text, micrographs; grey ones tinted).
Light is ambient plus a Lambertian sun (outdoors, with aerial haze) or a
ceiling lamp (indoors, with distance falloff); no shadows. A network
trained on them sees the cues a photo has for depth: occlusion,
perspective (the ground recedes to a horizon, parallel edges converge),
texture gradients (texture gets finer with distance, at a rate
set by the surface's slant), the size of similar objects, haze.

Camera: a pinhole with square pixels and the principal point at the image
centre; ``f = (H / 2) / tan(fov / 2)`` pixels for a vertical field of view
``fov``. World coordinates are metres with y up and the ground at y = 0;
the camera stands at ``(0, height, 0)`` heading along +z, pitched down by
``pitch`` and rolled by ``roll``. Pixel (i, j) (row, column) has its centre
at ``v = (i + 0.5 - H / 2) / f`` below and ``u = (j + 0.5 - W / 2) / f``
right of the optical axis, and its ray is ``u * right + v * down +
forward``: its ``forward`` component is 1, so the ray parameter at a hit IS
the depth, the z-distance along the optical axis (the depth convention of
stereo and RGB-D datasets, not the distance along the ray). For a level
camera and the ground, ``depth = height / v``; pitched down by ``pitch``,
``depth = height / (v cos(pitch) + sin(pitch))``.

``depth`` is traced through the pixel centres, exactly (float32 rounding
only). The image is shaded from the same rays, except at occlusion edges,
where it averages ``samples x samples`` sub-pixel rays (anti-aliasing, as a
camera integrates over a pixel); textures are sampled from mip-map levels
chosen by each ray's footprint on the surface (trilinear), so distant
textures blur instead of aliasing into moire.
Every scene is closed (a room, or ground plus backdrop), so every pixel has
a finite, positive depth.

``random_scene(seed, index, height, width)`` draws a scene from
``np.random.default_rng([seed, index])``: the same (seed, index) gives the
same scene, and so the same pixels, on every call and in every process.
The scene's layout depends on the aspect ratio, not the resolution.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Optional, Sequence

import numpy as np

# scikit-image sample images used as textures, all bundled with the package
# (no download): material-like images only (brick, gravel, grass, text,
# micrographs, the moon's craters). Photographs laid on surfaces (a face, a
# cat, a street on a wall or a box) teach the decoder that photographic
# content is flat; frozen-encoder runs trained with them scored worse on a
# real photo (Middlebury AbsRel 0.129-0.132 after 200-300 steps, on objects
# only or everywhere) than without them (0.119-0.120). The Middlebury
# motorcycle is left out on purpose: it is a depth benchmark.
TEXTURES = ("brick", "grass", "gravel", "coins", "moon", "text", "page", "hubble_deep_field",
            "immunohistochemistry", "retina", "checkerboard", "cell")
EPS = 1e-4  # metres: hits nearer than this along a ray are ignored


# ------------------------------------------------------------------ textures

@functools.lru_cache(maxsize=None)
def texture(name: str) -> tuple[tuple[np.ndarray, ...], bool]:
    """(mip pyramid, is_grey) of a scikit-image sample image: float32
    (h >> L, w >> L, 3) levels in [0.05, 0.95] (a 1-99 % percentile
    stretch, so dark images such as ``moon`` are usable), each level the
    2x2 mean of the one before. Cached: the arrays are shared, do not
    modify them.

    Args:
        name: a function name of ``skimage.data``, e.g. one of ``TEXTURES``.

    Returns:
        tuple: ``(levels, grey)``: the pyramid, finest level first, down
        to a level under 8 texels on its short side; and whether the image
        was grey (its three channels equal).
    """
    from skimage import data

    a = np.asarray(getattr(data, name)())
    a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else max(float(a.max()), 1.0))
    grey = a.ndim == 2
    a = np.repeat(a[..., None], 3, -1) if grey else a[..., :3]
    lo, hi = np.percentile(a, [1, 99])
    a = np.clip((a - lo) / max(hi - lo, 1e-3), 0, 1) * 0.9 + 0.05
    levels = [np.ascontiguousarray(a, np.float32)]
    while min(levels[-1].shape[:2]) >= 8:
        x = levels[-1]
        h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
        x = x[:h, :w]
        levels.append(0.25 * (x[0::2, 0::2] + x[1::2, 0::2] + x[0::2, 1::2] + x[1::2, 1::2]))
    return tuple(levels), grey


@dataclasses.dataclass(frozen=True)
class Material:
    """A square crop of a texture laid on a surface, repeated mirrored.

    Attributes:
        texture: the ``texture`` name (a ``skimage.data`` image).
        crop: ``(top, left, size)`` of the square crop, in full-resolution
            texels.
        metres: the side of one crop on the surface, in metres.
        tint: RGB factors multiplying the colour.
        swap: turn the texture 90 degrees (swap u and v).
    """
    texture: str
    crop: tuple[int, int, int]
    metres: float
    tint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    swap: bool = False

    def sample(self, uv: np.ndarray, footprint: np.ndarray) -> np.ndarray:
        """Filtered colours of the material at points of a surface.

        Bilinear within, and linear between, the two mip levels nearest
        each sample's footprint (trilinear filtering).

        Args:
            uv: (n, 2) surface coordinates in metres.
            footprint: (n,) metres of the surface each sample covers.

        Returns:
            np.ndarray: (n, 3) float32 RGB, the texture's [0.05, 0.95]
            values times ``tint``.
        """
        levels, _ = texture(self.texture)
        per_metre = self.crop[2] / self.metres
        texels = (uv[:, ::-1] if self.swap else uv) * per_metre
        level = np.log2(np.maximum(footprint * per_metre, 1.0))
        level = np.minimum(level, len(levels) - 1)
        base = np.floor(level).astype(np.int64)
        frac = (level - base).astype(np.float32)[:, None]
        out = np.empty((len(uv), 3), np.float32)
        for lev in np.flatnonzero(np.bincount(base)):
            sel = base == lev
            c0 = self._bilinear(levels, int(lev), texels[sel])
            if lev + 1 < len(levels):
                c1 = self._bilinear(levels, int(lev) + 1, texels[sel])
                c0 = c0 + (c1 - c0) * frac[sel]
            out[sel] = c0
        return out * np.asarray(self.tint, np.float32)

    def _bilinear(self, levels, lev: int, texels: np.ndarray) -> np.ndarray:
        image = levels[lev]
        width = image.shape[1]
        size = max(self.crop[2] >> lev, 1)  # a crop shrinks to one texel at coarse levels
        top = min(self.crop[0] >> lev, image.shape[0] - size)
        left = min(self.crop[1] >> lev, width - size)
        x = texels[:, 0] * np.float32(1 / (1 << lev)) - np.float32(0.5)
        y = texels[:, 1] * np.float32(1 / (1 << lev)) - np.float32(0.5)
        x0, y0 = np.floor(x), np.floor(y)
        fx, fy = (x - x0)[:, None], (y - y0)[:, None]
        x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
        xa, xb = left + _mirror(x0, size), left + _mirror(x0 + 1, size)
        ya, yb = (top + _mirror(y0, size)) * width, (top + _mirror(y0 + 1, size)) * width
        flat = image.reshape(-1, 3)
        a, b = np.take(flat, ya + xa, axis=0), np.take(flat, ya + xb, axis=0)
        c, d = np.take(flat, yb + xa, axis=0), np.take(flat, yb + xb, axis=0)
        upper = a + (b - a) * fx
        lower = c + (d - c) * fx
        return upper + (lower - upper) * fy


def _dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot products over the last axis of length 3 (numpy's sum over such a
    short axis is several times slower than this)."""
    return a[..., 0] * b[..., 0] + a[..., 1] * b[..., 1] + a[..., 2] * b[..., 2]


def _mirror(i: np.ndarray, n: int) -> np.ndarray:
    """Mirrored repetition of 0..n-1 (no seams where copies meet)."""
    m = np.mod(i, 2 * n)
    return np.minimum(m, 2 * n - 1 - m)


# ---------------------------------------------------------------- primitives

def _rot_y(angle: float) -> np.ndarray:
    """Rotation about +y: local -> world is ``world = local @ R.T``."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]], np.float32)


def _nearest_root(a, b, c):
    """Smaller positive root of ``a t^2 + 2 b t + c = 0`` (inf if none)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        disc = b * b - a * c
        root = np.sqrt(np.maximum(disc, 0))
        t1, t2 = (-b - root) / a, (-b + root) / a
        near = np.where(t1 > EPS, t1, t2)
        return np.where((disc >= 0) & (near > EPS), near, np.inf)


@dataclasses.dataclass(frozen=True)
class Plane:
    """The infinite plane through ``point`` with unit ``normal``. It has no
    bounds (``bounds`` is None): it may cover the whole image.

    Attributes:
        point: a point (x, y, z) of the plane, metres.
        normal: its unit normal.
        u_axis: unit direction of the texture's u coordinate in the plane.
        v_axis: unit direction of the texture's v coordinate.
        material: the texture laid on it.
        sky_above: points higher than this y (metres) are sky, not texture
            (the outdoor backdrop); None: no sky.
    """
    point: tuple
    normal: tuple
    u_axis: tuple
    v_axis: tuple
    material: Material
    sky_above: Optional[float] = None

    bounds = None  # covers the whole image

    def intersect(self, o, d):
        """Nearest hit of each ray from ``o`` along ``d``, beyond ``EPS``.

        Args:
            o: (3,) float32 origin shared by the rays (the camera centre).
            d: (..., 3) float32 ray directions.

        Returns:
            np.ndarray: float32 (...,) ray parameter t of the hit
            (``o + t * d``), inf where the ray misses; with a unit forward
            component in ``d``, t is the depth.
        """
        n = np.asarray(self.normal, np.float32)
        dn = d @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = np.float32((np.asarray(self.point, np.float32) - o) @ n) / dn
        return np.where(t > EPS, t, np.inf)

    def surface(self, p):
        """Normals and texture coordinates at points of the surface.

        Args:
            p: (n, 3) float32 points on the surface, world metres.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(normals, uv)``: (n, 3) unit
            normals (outward for solids, ``normal`` for a plane; ``render``
            turns them towards the camera) and (n, 2) texture coordinates
            in metres.
        """
        rel = p - np.asarray(self.point, np.float32)
        uv = np.stack([rel @ np.asarray(self.u_axis, np.float32),
                       rel @ np.asarray(self.v_axis, np.float32)], -1)
        return np.broadcast_to(np.asarray(self.normal, np.float32), p.shape), uv


@dataclasses.dataclass(frozen=True)
class Box:
    """A box of half extents ``half`` about ``center``, turned by ``yaw``
    about the vertical.

    Attributes:
        center: (x, y, z) of its centre, metres.
        half: half extents along its own (x, y, z) axes, metres.
        yaw: turn about the vertical, radians.
        material: the texture laid on its faces.
    """
    center: tuple
    half: tuple
    yaw: float
    material: Material

    @property
    def bounds(self):
        """(8, 3) float32 world corners of a box enclosing the primitive;
        ``trace`` intersects it only with the rays of their projection."""
        r = _rot_y(self.yaw)
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)],
                           np.float32) * np.asarray(self.half, np.float32)
        return corners @ r.T + np.asarray(self.center, np.float32)

    def intersect(self, o, d):
        """Nearest hit of each ray from ``o`` along ``d``, beyond ``EPS``.

        Args:
            o: (3,) float32 origin shared by the rays (the camera centre).
            d: (..., 3) float32 ray directions.

        Returns:
            np.ndarray: float32 (...,) ray parameter t of the hit
            (``o + t * d``), inf where the ray misses; with a unit forward
            component in ``d``, t is the depth.
        """
        r = _rot_y(self.yaw)
        lo = (o - np.asarray(self.center, np.float32)) @ r
        ld = d @ r
        half = np.asarray(self.half, np.float32)
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (-half - lo) / ld, (half - lo) / ld
            lo_t, hi_t = np.minimum(t1, t2), np.maximum(t1, t2)
            near = np.maximum(np.maximum(lo_t[..., 0], lo_t[..., 1]), lo_t[..., 2])
            far = np.minimum(np.minimum(hi_t[..., 0], hi_t[..., 1]), hi_t[..., 2])
        return np.where((near <= far) & (near > EPS), near, np.inf)

    def surface(self, p):
        """Normals and texture coordinates at points of the surface.

        Args:
            p: (n, 3) float32 points on the surface, world metres.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(normals, uv)``: (n, 3) unit
            normals (outward for solids, ``normal`` for a plane; ``render``
            turns them towards the camera) and (n, 2) texture coordinates
            in metres.
        """
        r = _rot_y(self.yaw)
        half = np.asarray(self.half, np.float32)
        lp = (p - np.asarray(self.center, np.float32)) @ r
        axis = np.argmax(np.abs(lp) / half, -1)
        n_local = np.zeros_like(lp)
        rows = np.arange(len(lp))
        n_local[rows, axis] = np.sign(lp[rows, axis])
        x, y, z = lp[:, 0], lp[:, 1], lp[:, 2]
        uv = np.where((axis == 0)[:, None], np.stack([z, -y], -1),
                      np.where((axis == 1)[:, None], np.stack([x, z], -1), np.stack([x, -y], -1)))
        return n_local @ r.T, uv


@dataclasses.dataclass(frozen=True)
class Sphere:
    """A sphere.

    Attributes:
        center: (x, y, z) of its centre, metres.
        radius: metres.
        material: the texture laid on it.
    """
    center: tuple
    radius: float
    material: Material

    @property
    def bounds(self):
        """(8, 3) float32 world corners of a box enclosing the primitive;
        ``trace`` intersects it only with the rays of their projection."""
        c, r = np.asarray(self.center, np.float32), self.radius
        return np.array([c + r * np.float32([sx, sy, sz]) for sx in (-1, 1) for sy in (-1, 1)
                         for sz in (-1, 1)])

    def intersect(self, o, d):
        """Nearest hit of each ray from ``o`` along ``d``, beyond ``EPS``.

        Args:
            o: (3,) float32 origin shared by the rays (the camera centre).
            d: (..., 3) float32 ray directions.

        Returns:
            np.ndarray: float32 (...,) ray parameter t of the hit
            (``o + t * d``), inf where the ray misses; with a unit forward
            component in ``d``, t is the depth.
        """
        oc = o - np.asarray(self.center, np.float32)
        return _nearest_root(_dot(d, d), d @ oc, np.float32(oc @ oc - self.radius ** 2))

    def surface(self, p):
        """Normals and texture coordinates at points of the surface.

        Args:
            p: (n, 3) float32 points on the surface, world metres.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(normals, uv)``: (n, 3) unit
            normals (outward for solids, ``normal`` for a plane; ``render``
            turns them towards the camera) and (n, 2) texture coordinates
            in metres.
        """
        n = (p - np.asarray(self.center, np.float32)) / np.float32(self.radius)
        uv = self.radius * np.stack([np.arctan2(n[:, 0], n[:, 2]),
                                     -np.arcsin(np.clip(n[:, 1], -1, 1))], -1)
        return n, uv


@dataclasses.dataclass(frozen=True)
class Cylinder:
    """A closed vertical cylinder, from ``base`` (centre of the bottom disc)
    up by ``height``.

    Attributes:
        base: (x, y, z) of the bottom disc's centre, metres.
        radius: metres.
        height: metres.
        material: the texture laid on its side and caps.
    """
    base: tuple
    radius: float
    height: float
    material: Material

    @property
    def bounds(self):
        """(8, 3) float32 world corners of a box enclosing the primitive;
        ``trace`` intersects it only with the rays of their projection."""
        b, r, h = np.asarray(self.base, np.float32), self.radius, self.height
        return np.array([b + np.float32([sx * r, y, sz * r]) for sx in (-1, 1) for y in (0, h)
                         for sz in (-1, 1)])

    def intersect(self, o, d):
        """Nearest hit of each ray from ``o`` along ``d``, beyond ``EPS``.

        Args:
            o: (3,) float32 origin shared by the rays (the camera centre).
            d: (..., 3) float32 ray directions.

        Returns:
            np.ndarray: float32 (...,) ray parameter t of the hit
            (``o + t * d``), inf where the ray misses; with a unit forward
            component in ``d``, t is the depth.
        """
        ox, oy, oz = o - np.asarray(self.base, np.float32)
        dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
        t = _nearest_root(dx * dx + dz * dz, ox * dx + oz * dz,
                          np.float32(ox * ox + oz * oz - self.radius ** 2))
        y = oy + t * dy
        t = np.where((y >= 0) & (y <= self.height), t, np.inf)
        for cap in (0.0, self.height):
            with np.errstate(divide="ignore", invalid="ignore"):
                tc = (cap - oy) / dy
            x, z = ox + tc * dx, oz + tc * dz
            ok = (tc > EPS) & (x * x + z * z <= self.radius ** 2)
            t = np.minimum(t, np.where(ok, tc, np.inf))
        return t

    def surface(self, p):
        """Normals and texture coordinates at points of the surface.

        Args:
            p: (n, 3) float32 points on the surface, world metres.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(normals, uv)``: (n, 3) unit
            normals (outward for solids, ``normal`` for a plane; ``render``
            turns them towards the camera) and (n, 2) texture coordinates
            in metres.
        """
        rel = p - np.asarray(self.base, np.float32)
        x, y, z = rel[:, 0], rel[:, 1], rel[:, 2]
        radial = np.sqrt(x * x + z * z)
        cap = radial < self.radius * (1 - 1e-3)
        side = np.stack([x, np.zeros_like(x), z], -1) / np.maximum(radial, 1e-6)[:, None]
        capn = np.zeros_like(rel)
        capn[:, 1] = np.where(y > self.height / 2, 1, -1)
        n = np.where(cap[:, None], capn, side)
        uv = np.where(cap[:, None], np.stack([x, z], -1),
                      np.stack([self.radius * np.arctan2(x, z), -y], -1))
        return n, uv


@dataclasses.dataclass(frozen=True)
class Cone:
    """A vertical cone, base disc centred at ``base``, apex ``height`` above it.

    Attributes:
        base: (x, y, z) of the base disc's centre, metres.
        radius: of the base disc, metres.
        height: apex above the base, metres.
        material: the texture laid on its side and base.
    """
    base: tuple
    radius: float
    height: float
    material: Material

    bounds = Cylinder.bounds

    def intersect(self, o, d):
        """Nearest hit of each ray from ``o`` along ``d``, beyond ``EPS``.

        Args:
            o: (3,) float32 origin shared by the rays (the camera centre).
            d: (..., 3) float32 ray directions.

        Returns:
            np.ndarray: float32 (...,) ray parameter t of the hit
            (``o + t * d``), inf where the ray misses; with a unit forward
            component in ``d``, t is the depth.
        """
        ox, oy, oz = o - np.asarray(self.base, np.float32)
        dx, dy, dz = d[..., 0], d[..., 1], d[..., 2]
        k2 = np.float32((self.radius / self.height) ** 2)
        h = np.float32(self.height)
        a = dx * dx + dz * dz - k2 * dy * dy
        b = ox * dx + oz * dz + k2 * (h - oy) * dy
        c = np.float32(ox * ox + oz * oz - k2 * (h - oy) ** 2)
        with np.errstate(invalid="ignore", divide="ignore"):
            disc = b * b - a * c
            root = np.sqrt(np.maximum(disc, 0))
            best = np.full(a.shape, np.inf, np.float32)
            for t in ((-b - root) / a, (-b + root) / a):
                y = oy + t * dy
                ok = (disc >= 0) & (t > EPS) & (y >= 0) & (y <= h)
                best = np.minimum(best, np.where(ok, t, np.inf))
            tc = -oy / dy
        x, z = ox + tc * dx, oz + tc * dz
        ok = (tc > EPS) & (x * x + z * z <= self.radius ** 2)
        return np.minimum(best, np.where(ok, tc, np.inf))

    def surface(self, p):
        """Normals and texture coordinates at points of the surface.

        Args:
            p: (n, 3) float32 points on the surface, world metres.

        Returns:
            tuple[np.ndarray, np.ndarray]: ``(normals, uv)``: (n, 3) unit
            normals (outward for solids, ``normal`` for a plane; ``render``
            turns them towards the camera) and (n, 2) texture coordinates
            in metres.
        """
        rel = p - np.asarray(self.base, np.float32)
        x, y, z = rel[:, 0], rel[:, 1], rel[:, 2]
        k2 = (self.radius / self.height) ** 2
        side = np.stack([x, k2 * (self.height - y), z], -1)
        side /= np.maximum(np.sqrt(_dot(side, side)), 1e-6)[:, None]
        cap = y < self.height * 1e-3
        capn = np.zeros_like(rel)
        capn[:, 1] = -1
        n = np.where(cap[:, None], capn, side)
        uv = np.where(cap[:, None], np.stack([x, z], -1),
                      np.stack([self.radius * np.arctan2(x, z), -y], -1))
        return n, uv


# -------------------------------------------------------------------- scenes

@dataclasses.dataclass(frozen=True)
class Camera:
    """A pinhole camera at ``(0, height, 0)`` heading along +z (see the
    module docstring for the pixel and ray conventions).

    Attributes:
        height: metres above the ground.
        pitch: radians, positive looks down.
        roll: radians, about the optical axis.
        fov: vertical field of view, radians.
    """
    height: float  # metres above the ground
    pitch: float = 0.0  # radians, positive looks down
    roll: float = 0.0  # radians, about the optical axis
    fov: float = math.radians(60)  # vertical field of view, radians

    def basis(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """World (right, down, forward) unit vectors of the image axes.

        Returns:
            tuple[np.ndarray, np.ndarray, np.ndarray]: three float32 (3,)
            vectors.
        """
        cp, sp = math.cos(self.pitch), math.sin(self.pitch)
        forward = np.array([0, -sp, cp])
        up = np.array([0, cp, sp])
        right = np.array([1.0, 0, 0])
        cr, sr = math.cos(self.roll), math.sin(self.roll)
        right, up = cr * right - sr * up, sr * right + cr * up
        return right.astype(np.float32), (-up).astype(np.float32), forward.astype(np.float32)

    def focal(self, height: int) -> float:
        """Focal length in pixels for images ``height`` pixels tall.

        Args:
            height: image height in pixels.

        Returns:
            float: ``(height / 2) / tan(fov / 2)``.
        """
        return (height / 2) / math.tan(self.fov / 2)

    @property
    def origin(self) -> np.ndarray:
        """The camera centre, float32 ``(0, height, 0)``."""
        return np.array([0, self.height, 0], np.float32)

    def rays(self, height: int, width: int, samples: int = 1) -> np.ndarray:
        """Rays through the centres of ``samples x samples`` sub-pixels of every pixel.

        Args:
            height: image height in pixels.
            width: image width in pixels.
            samples: sub-pixels per pixel side.

        Returns:
            np.ndarray: float32 (height * samples, width * samples, 3) world
            directions with unit forward component (so a hit's ray
            parameter is its depth).
        """
        f = self.focal(height)
        u = ((np.arange(width * samples) + 0.5) / samples - width / 2) / f
        v = ((np.arange(height * samples) + 0.5) / samples - height / 2) / f
        right, down, forward = self.basis()
        return (u[None, :, None] * right + v[:, None, None] * down + forward).astype(np.float32)


@dataclasses.dataclass(frozen=True)
class Light:
    """Ambient light, plus a sun (``direction`` towards it) or a lamp at
    ``position`` (intensity falling off as 1 / (1 + (r / falloff)^2)).

    Attributes:
        ambient: light reaching every surface, times the albedo.
        intensity: strength of the sun or lamp (Lambertian).
        direction: unit vector towards the sun; None for a lamp.
        position: the lamp's (x, y, z) in metres, used when ``direction``
            is None.
        falloff: distance at which the lamp's light has halved, metres.
        colour: RGB factors of the sun or lamp.
    """
    ambient: float
    intensity: float
    direction: Optional[tuple] = None
    position: Optional[tuple] = None
    falloff: float = 4.0
    colour: tuple = (1.0, 1.0, 1.0)


@dataclasses.dataclass(frozen=True)
class Scene:
    """What ``render`` draws: a camera, primitives, light and atmosphere.

    Attributes:
        camera: the ``Camera``.
        primitives: ``Plane``, ``Box``, ``Sphere``, ``Cylinder`` and
            ``Cone`` objects; together they must close the scene (every ray
            hits one).
        light: the ``Light``.
        haze: e-folding distance of aerial haze in metres (along the ray);
            None: no haze.
        haze_colour: RGB in [0, 1] that haze fades towards.
        sky: RGB in [0, 1] of the sky at the horizon and at the zenith.
        exposure: factor on the shaded colour before clipping to [0, 1].
        noise: standard deviation of Gaussian sensor noise, in [0, 1]
            units; 0: none.
        noise_seed: seed of the noise.
    """
    camera: Camera
    primitives: tuple
    light: Light
    haze: Optional[float] = None  # metres: e-folding distance of aerial haze
    haze_colour: tuple = (0.8, 0.85, 0.9)
    sky: tuple = ((0.85, 0.9, 0.95), (0.35, 0.55, 0.85))  # horizon, zenith
    exposure: float = 1.0
    noise: float = 0.0  # standard deviation of sensor noise, in [0, 1] units
    noise_seed: int = 0


def trace(scene: Scene, rays: np.ndarray, focal: Optional[float] = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest hit of each ray from the scene's camera.

    For an (h, w) grid of rays with its ``focal`` (pixels), a bounded
    primitive is only intersected with the rays of the grid rectangle its
    projected bounding box covers.

    Args:
        scene: the scene.
        rays: (..., 3) float32 directions from the camera centre, e.g.
            ``Camera.rays``.
        focal: the focal length in pixels of an (h, w, 3) grid of
            ``rays``; None intersects every primitive with every ray.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(t, index)`` shaped like the rays
        without their last axis: float32 ray parameter of the hit (the
        depth in metres for rays with unit forward component; inf for
        none) and int16 index into ``scene.primitives`` (-1 for none).
    """
    o = scene.camera.origin
    depth = np.full(rays.shape[:-1], np.inf, np.float32)
    index = np.full(rays.shape[:-1], -1, np.int16)
    for k, prim in enumerate(scene.primitives):
        window = (slice(None),)
        if focal is not None:
            r0, r1, c0, c1 = _window(prim, scene.camera, focal, *rays.shape[:2])
            if r0 >= r1 or c0 >= c1:
                continue
            window = (slice(r0, r1), slice(c0, c1))
        # Misses compute inf * 0 and x / 0 on the way to inf: expected.
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            t = prim.intersect(o, rays[window])
        best = depth[window]
        closer = t < best
        best[closer] = t[closer]
        index[window][closer] = k
    return depth, index


def _window(prim, camera: Camera, focal: float, h: int, w: int) -> tuple[int, int, int, int]:
    """Rows and columns of the grid the primitive can cover (all of it for
    planes or anything reaching behind the camera)."""
    corners = prim.bounds
    if corners is None:
        return 0, h, 0, w
    right, down, forward = camera.basis()
    rel = np.asarray(corners, np.float32) - camera.origin
    z = rel @ forward
    if (z < 0.05).any():
        return 0, h, 0, w
    cols = focal * (rel @ right) / z + w / 2
    rows = focal * (rel @ down) / z + h / 2
    return (max(0, int(np.floor(rows.min())) - 1), min(h, int(np.ceil(rows.max())) + 1),
            max(0, int(np.floor(cols.min())) - 1), min(w, int(np.ceil(cols.max())) + 1))


def render(scene: Scene, height: int, width: int, samples: int = 2
           ) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 (height, width, 3), depth float32 (height, width) metres).

    Depth and the colour of most pixels come from the ray through the pixel
    centre; pixels at an occlusion edge (a 4-neighbour sees another
    primitive) average ``samples x samples`` sub-pixel rays instead. That is
    where one ray per pixel would alias; textures elsewhere are filtered by
    their mip-maps.

    Args:
        scene: a closed scene.
        height: image height in pixels.
        width: image width in pixels.
        samples: sub-pixel rays per side at occlusion edges; 1 turns
            anti-aliasing off.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``(image, depth)``: uint8 (height,
        width, 3) RGB and float32 (height, width) depth in metres (the
        z-distance along the optical axis, finite and positive).

    Raises:
        RuntimeError: when a ray hits nothing (the scene is not closed).
    """
    cam = scene.camera
    focal = cam.focal(height)
    rays = cam.rays(height, width)
    depth, index = trace(scene, rays, focal)
    if (index < 0).any():
        raise RuntimeError("a ray left the scene: scenes must be closed")
    edge = np.zeros(index.shape, bool)
    if samples > 1:
        across, down = index[:, 1:] != index[:, :-1], index[1:] != index[:-1]
        edge[:, 1:] |= across
        edge[:, :-1] |= across
        edge[1:] |= down
        edge[:-1] |= down
    image = np.empty((height * width, 3), np.float32)
    flat_rays, flat_depth, flat_index = rays.reshape(-1, 3), depth.reshape(-1), index.reshape(-1)
    inner, edge = np.flatnonzero(~edge), np.flatnonzero(edge)
    image[inner] = _shade(scene, flat_rays[inner], flat_depth[inner], flat_index[inner], focal)
    if len(edge):
        right, below, _ = cam.basis()
        offsets = (np.arange(samples) + 0.5) / samples - 0.5  # pixels
        du, dv = (a.reshape(-1) for a in np.meshgrid(offsets, offsets))
        shift = (du[:, None] * right + dv[:, None] * below) / np.float32(focal)
        sub = (flat_rays[edge][:, None] + shift.astype(np.float32)).reshape(-1, 3)
        t, hit = trace(scene, sub)
        if (hit < 0).any():
            raise RuntimeError("a ray left the scene: scenes must be closed")
        colour = _shade(scene, sub, t, hit, focal * samples).reshape(-1, samples * samples, 3)
        image[edge] = sum(colour[:, j] for j in range(samples * samples)) / samples ** 2
    image = image.reshape(height, width, 3)
    if scene.noise:
        image = image + np.random.default_rng(scene.noise_seed).normal(
            0, scene.noise, image.shape).astype(np.float32)
    image = np.clip(image * scene.exposure, 0, 1)
    return np.round(image * 255).astype(np.uint8), depth


def _shade(scene: Scene, rays, t, hit, focal: float) -> np.ndarray:
    """Colours (n, 3) of rays (n, 3) hitting primitives ``hit`` (n,) at
    depth ``t`` (n,); ``focal``: pixels per unit of the rays' spread (sets
    the texture footprint)."""
    o = scene.camera.origin
    light = scene.light
    out = np.zeros(rays.shape, np.float32)
    # Samples grouped by the primitive they hit: one sort instead of a mask
    # over the whole grid per primitive.
    order = np.argsort(hit, kind="stable")
    ends = np.cumsum(np.bincount(hit, minlength=len(scene.primitives)))
    for k, prim in enumerate(scene.primitives):
        sel = order[ends[k - 1] if k else 0:ends[k]]
        if not len(sel):
            continue
        d, tk = rays[sel], t[sel]
        p = o + tk[:, None] * d
        n, uv = prim.surface(p)
        length = np.sqrt(_dot(d, d))
        dot = _dot(n, d)
        cos = np.abs(dot) / length
        n = np.where((dot > 0)[:, None], -n, n)  # the side the camera sees
        # The sample's footprint on the surface: t / focal across the ray,
        # stretched by 1 / cos along the slant; their geometric mean picks
        # the mip level.
        footprint = tk / np.float32(focal) / np.sqrt(np.maximum(cos, np.float32(0.02)))
        albedo = prim.material.sample(uv, footprint)
        if light.direction is not None:
            lam = np.maximum(n @ np.asarray(light.direction, np.float32), 0)
        else:
            to_lamp = np.asarray(light.position, np.float32) - p
            r = np.sqrt(_dot(to_lamp, to_lamp))
            lam = np.maximum(_dot(n, to_lamp) / np.maximum(r, np.float32(1e-6)), 0)
            lam = lam / (1 + (r / np.float32(light.falloff)) ** 2)
        shade = np.float32(light.ambient) + np.float32(light.intensity) * lam[:, None] * \
            np.asarray(light.colour, np.float32)
        colour = albedo * shade
        sky_above = getattr(prim, "sky_above", None)
        if sky_above is not None:
            sky = p[:, 1] > sky_above
            if sky.any():
                elevation = np.clip(d[sky, 1] / length[sky], 0, 1)[:, None] ** 0.5
                horizon, zenith = (np.asarray(c, np.float32) for c in scene.sky)
                colour[sky] = horizon + (zenith - horizon) * elevation
        if scene.haze:
            clear = np.exp(-tk * length / np.float32(scene.haze))[:, None]
            colour = colour * clear + np.asarray(scene.haze_colour, np.float32) * (1 - clear)
        out[sel] = colour
    return out


# --------------------------------------------------------------- random scenes

def random_material(rng: np.random.Generator, metres: tuple[float, float]) -> Material:
    """A random crop of one of ``TEXTURES``, tinted (grey textures get a
    random hue) and turned 90 degrees half the time.

    Args:
        rng: the random generator to draw from.
        metres: (low, high) side of one crop on the surface, drawn
            log-uniformly.

    Returns:
        Material: the drawn material.
    """
    name = TEXTURES[rng.integers(len(TEXTURES))]
    levels, grey = texture(name)
    h, w = levels[0].shape[:2]
    size = int(rng.integers(min(64, min(h, w)), min(h, w) + 1))
    top, left = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
    if grey:  # a colour for grey images: hue anywhere, moderate saturation
        hue, sat, val = rng.uniform(0, 1), rng.uniform(0.15, 0.7), rng.uniform(0.7, 1.1)
        tint = tuple(float(val * (1 - sat + sat * c)) for c in _hue(hue))
    else:
        tint = tuple(float(v) for v in np.clip(rng.normal(1, 0.1, 3), 0.7, 1.3))
    return Material(name, (top, left, size), float(np.exp(rng.uniform(*np.log(metres)))), tint,
                    bool(rng.random() < 0.5))


def _hue(h: float) -> tuple[float, float, float]:
    """Fully saturated RGB of hue ``h`` in [0, 1)."""
    return tuple(float(np.clip(abs((h * 6 + s) % 6 - 3) - 1, 0, 1)) for s in (0, 4, 2))


def _plane(point, normal, u_axis, v_axis, material, sky_above=None) -> Plane:
    f = [tuple(float(x) for x in np.asarray(a, np.float64)) for a in (point, normal, u_axis,
                                                                    v_axis)]
    return Plane(*f, material=material, sky_above=sky_above)


def random_scene(seed: int, index: int, height: int = 192, width: int = 256) -> Scene:
    """The scene number ``index`` of the stream ``seed`` for images of the
    given aspect ratio: half rooms (floor, ceiling, four walls, 3-10
    objects, a lamp), half outdoor views (ground, a backdrop 25-120 m away
    with sky above it, 4-14 objects, some of them building-sized, sun and
    haze). The same arguments give the same scene in every process.

    Args:
        seed: the stream (``DepthScenes`` uses 0 for train, 1 for test).
        index: the scene's number within the stream.
        height: image height the scene is framed for, pixels.
        width: image width, pixels; only the aspect ratio matters.

    Returns:
        Scene: a closed scene, drawn from
        ``np.random.default_rng([seed, index])``.
    """
    rng = np.random.default_rng([int(seed), int(index)])
    indoor = bool(rng.random() < 0.5)
    fov = math.radians(rng.uniform(45, 75))
    pitch = math.radians(rng.uniform(-5, 30))
    roll = math.radians(float(np.clip(rng.normal(0, 3), -8, 8)))
    if indoor:
        cam_h = rng.uniform(0.5, 2.0)
    else:
        cam_h = rng.uniform(1.0, 3.0) if rng.random() < 0.8 else rng.uniform(3.0, 10.0)
    camera = Camera(float(cam_h), float(pitch), float(roll), float(fov))
    half_w = math.tan(fov / 2) * width / height  # horizontal half-extent at depth 1
    prims: list = []
    if indoor:
        room_w, room_d = rng.uniform(3, 10), rng.uniform(4, 16)
        room_h = max(rng.uniform(2.4, 4.0), cam_h + 0.4)
        yaw = math.radians(rng.uniform(-35, 35))
        cam_x, cam_z = rng.uniform(-0.35, 0.35) * room_w, rng.uniform(0.3, 0.35 * room_d)
        rot = _rot_y(yaw).astype(np.float64)

        def world(x, y, z):  # room coordinates -> world
            return np.array([x - cam_x, y, z - cam_z]) @ rot.T

        def axis(x, y, z):
            return np.array([x, y, z], np.float64) @ rot.T

        wall = random_material(rng, (1.0, 4.0))
        floor_m = random_material(rng, (0.5, 3.0))
        prims.append(_plane(world(0, 0, 0), axis(0, 1, 0), axis(1, 0, 0), axis(0, 0, 1), floor_m))
        prims.append(_plane(world(0, room_h, 0), axis(0, -1, 0), axis(1, 0, 0), axis(0, 0, 1),
                            random_material(rng, (1.0, 4.0))))
        for centre, normal, u in (((0, 0, room_d), (0, 0, -1), (1, 0, 0)),
                                  ((0, 0, 0), (0, 0, 1), (-1, 0, 0)),
                                  ((-room_w / 2, 0, 0), (1, 0, 0), (0, 0, -1)),
                                  ((room_w / 2, 0, 0), (-1, 0, 0), (0, 0, 1))):
            material = wall if rng.random() < 0.5 else random_material(rng, (1.0, 4.0))
            prims.append(_plane(world(*centre), axis(*normal), axis(*u), (0, -1, 0), material))
        lamp = world(rng.uniform(-0.4, 0.4) * room_w, room_h - 0.2, rng.uniform(0.2, 0.8) * room_d)
        light = Light(ambient=float(rng.uniform(0.25, 0.5)), intensity=float(rng.uniform(0.7, 1.3)),
                      position=tuple(float(v) for v in lamp),
                      falloff=float(rng.uniform(3, 8)),
                      colour=tuple(float(v) for v in rng.uniform(0.85, 1.0, 3)))

        def inside(c, r):
            x, _, z = np.asarray(c) @ rot + np.array([cam_x, 0, cam_z])
            return abs(x) < room_w / 2 - r and r < z < room_d - r

        n_objects, far, haze = int(rng.integers(3, 11)), 0.9 * room_d, None
    else:
        back = float(np.exp(rng.uniform(np.log(25), np.log(120))))
        ground = random_material(rng, (1.0, 8.0))
        prims.append(_plane((0, 0, 0), (0, 1, 0), (1, 0, 0), (0, 0, 1), ground))
        prims.append(_plane((0, 0, back), (0, 0, -1), (1, 0, 0), (0, -1, 0),
                            random_material(rng, (8.0, 40.0)),
                            sky_above=float(rng.uniform(2, 0.3 * back))))
        elevation, azimuth = math.radians(rng.uniform(15, 75)), rng.uniform(0, 2 * math.pi)
        sun = (math.cos(elevation) * math.sin(azimuth), math.sin(elevation),
               math.cos(elevation) * math.cos(azimuth))
        light = Light(ambient=float(rng.uniform(0.3, 0.55)), intensity=float(rng.uniform(0.5, 0.9)),
                      direction=tuple(float(v) for v in sun),
                      colour=tuple(float(v) for v in rng.uniform(0.85, 1.0, 3)))

        def inside(c, r):
            return np.asarray(c)[2] + r < back

        n_objects, far = int(rng.integers(4, 15)), 0.7 * back
        haze = float(np.exp(rng.uniform(np.log(60), np.log(400))))
    for _ in range(n_objects):
        obj = _random_object(rng, camera, half_w, far, inside, outdoor=not indoor)
        if obj is not None:
            prims.append(obj)
    return Scene(camera, tuple(prims), light, haze=haze,
                 haze_colour=tuple(float(v) for v in rng.uniform(0.7, 0.9, 3)),
                 sky=(tuple(float(v) for v in rng.uniform(0.75, 0.95, 3)),
                      tuple(float(v) for v in rng.uniform([0.2, 0.35, 0.6], [0.45, 0.6, 0.9]))),
                 exposure=float(rng.uniform(0.9, 1.3)), noise=float(rng.uniform(0, 0.015)),
                 noise_seed=int(rng.integers(2 ** 31)))


def _random_object(rng, camera: Camera, half_w: float, far: float, inside, outdoor: bool):
    """One object on the ground (sometimes floating) in front of the
    camera, or None after 20 tries that landed outside the room, around the
    camera or out of view."""
    kind = rng.choice(["box", "box", "panel", "sphere", "cylinder", "cone"])
    for _ in range(20):
        z = float(np.exp(rng.uniform(np.log(1.0), np.log(max(far, 1.5)))))
        x = float(z * half_w * rng.uniform(-1.2, 1.2))
        grow = max(1.0, z / 10) * rng.uniform(0.6, 1.4)
        if outdoor and rng.random() < 0.15:
            grow *= rng.uniform(3, 8)  # buildings, rocks
        lift = float(rng.uniform(0.2, 2.0)) if rng.random() < 0.15 else 0.0
        material = random_material(rng, (0.3, 2.0) if grow < 3 else (2.0, 10.0))
        if kind in ("box", "panel"):
            half = rng.uniform(0.1, 0.8, 3) * grow
            if kind == "panel":
                half[2] = rng.uniform(0.01, 0.04)  # thin along its own z: a sign, a door
            obj = Box((x, lift + half[1], z), tuple(float(v) for v in half),
                      float(rng.uniform(0, math.pi / 2)), material)
            radius = float(np.linalg.norm(half))
        elif kind == "sphere":
            r = float(rng.uniform(0.1, 0.8) * grow)
            obj, radius = Sphere((x, lift + r, z), r, material), r
        else:
            r, h = float(rng.uniform(0.05, 0.6) * grow), float(rng.uniform(0.2, 2.5) * grow)
            obj = (Cylinder if kind == "cylinder" else Cone)((x, lift, z), r, h, material)
            radius = math.hypot(r, h)
        centre = np.array([x, lift, z])
        if not inside(centre, min(radius, 0.5)):
            continue
        if np.linalg.norm(centre - camera.origin) < radius + 0.3:
            continue  # the camera would be inside or touching it
        return obj
    return None


def render_example(seed: int, index: int, height: int = 192, width: int = 256,
                   samples: int = 2) -> dict:
    """Scene ``(seed, index)`` rendered at ``height`` x ``width``.

    Args:
        seed: the stream (0: train, 1: test in ``depth_scenes``).
        index: the scene's number within the stream.
        height: image height in pixels.
        width: image width in pixels.
        samples: sub-pixel rays per side at occlusion edges.

    Returns:
        dict: ``{"image": uint8 (H, W, 3), "depth": float32 (H, W)
        metres}``.

    Raises:
        RuntimeError: when a ray leaves the scene (a bug in
            ``random_scene``: its scenes are closed).
    """
    image, depth = render(random_scene(seed, index, height, width), height, width, samples)
    return {"image": image, "depth": depth}


def _encoded_example(args: tuple) -> tuple[bytes, np.ndarray]:
    """(PNG bytes, depth) of one scene: the work of a build worker (which
    need not import TFDS, as ``builders.png_bytes`` would)."""
    import io

    from PIL import Image

    ex = render_example(*args)
    buffer = io.BytesIO()
    Image.fromarray(ex["image"]).save(buffer, format="PNG")
    return buffer.getvalue(), ex["depth"]


def encoded_examples(seed: int, count: int, height: int, width: int, workers: int = 0):
    """``(png bytes, depth)`` of scenes ``0 .. count - 1`` of ``seed``, in
    order, rendered by ``workers`` spawned processes (0: here). Spawned,
    not forked: the caller may hold JAX's threads, which a fork would copy
    in an unknown state. At most ``4 * workers`` scenes wait in memory.

    Args:
        seed: the stream.
        count: number of scenes, from index 0.
        height: image height in pixels.
        width: image width in pixels.
        workers: spawned rendering processes; 0 or less renders here.

    Yields:
        tuple[bytes, np.ndarray]: ``(png, depth)``: the image as PNG bytes
        and its float32 (height, width) depth in metres, scene by scene.

    Raises:
        RuntimeError: when a worker process dies (e.g. a script that
            prepares a dataset at top level without ``if __name__ ==
            "__main__":``).
    """
    jobs = [(seed, i, height, width) for i in range(count)]
    if workers <= 0:
        yield from map(_encoded_example, jobs)
        return
    import collections
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_die_with_parent)
    try:
        pending: collections.deque = collections.deque()
        for job in jobs:
            pending.append(pool.submit(_encoded_example, job))
            if len(pending) >= 4 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise RuntimeError(
            "a scene-rendering worker process died (its own error, if any, is printed above; a "
            "script that prepares a dataset at top level needs `if __name__ == '__main__':`)"
        ) from None
    finally:  # also when the build is interrupted: drop the queued scenes
        pool.shutdown(wait=True, cancel_futures=True)


def _die_with_parent() -> None:
    """Worker start: on Linux, ask for SIGKILL when the parent dies, so a
    killed build leaves no orphans rendering (elsewhere nothing is done)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def contact_sheet(examples: Sequence[dict], path, columns: int = 4,
                  colours: Optional[int] = None) -> None:
    """A PNG of the images with their colour-mapped inverse depth beneath
    each one (near is bright), for documentation; ``colours``: a palette of
    that many colours (a smaller file) instead of RGB.

    Args:
        examples: ``render_example`` results of one size; fewer than a
            row's worth leave blank cells.
        path: the PNG file to write.
        columns: examples per row.
        colours: palette size (median cut); None writes full RGB.
    """
    from matplotlib import colormaps
    from PIL import Image

    rows = []
    for start in range(0, len(examples), columns):
        chunk = list(examples[start:start + columns])
        blank = {"image": np.full_like(chunk[0]["image"], 255),
                 "depth": np.ones_like(chunk[0]["depth"])}
        chunk += [blank] * (columns - len(chunk))
        tops, bottoms = [], []
        for ex in chunk:
            inv = 1.0 / ex["depth"]
            inv = (inv - inv.min()) / max(float(np.ptp(inv)), 1e-9)
            tops.append(ex["image"])
            bottoms.append((colormaps["magma"](inv)[..., :3] * 255).astype(np.uint8))
        pad = np.full((tops[0].shape[0], 4, 3), 255, np.uint8)
        join = [a for im in tops for a in (im, pad)][:-1]
        rows.append(np.concatenate(join, 1))
        rows.append(np.full((4, rows[-1].shape[1], 3), 255, np.uint8))
        join = [a for im in bottoms for a in (im, pad)][:-1]
        rows.append(np.concatenate(join, 1))
        rows.append(np.full((12, rows[-1].shape[1], 3), 255, np.uint8))
    sheet = Image.fromarray(np.concatenate(rows[:-1], 0))
    if colours:
        sheet = sheet.quantize(colours, method=Image.Quantize.MEDIANCUT)
    sheet.save(path, optimize=True)
