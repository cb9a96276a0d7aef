"""Image degradations (the restoration generator's recipe plus pose, occlusion, exposure), deterministic under a seed.

Each degradation is a plain function of a BGR uint8 image and explicit parameters; its
parameter ranges are the module constants below. `Degradation` samples parameters from a
numpy Generator, applies them in a fixed physical order (geometry, scene, optics, sensor,
codec) and returns the image, the parameters used and a scalar strength in [0, 1].
`Degradation.low_res` is the super-resolution variant: an exact x2/x4/x8 downsample that is
not re-upscaled.

The restoration generator fixes: Gaussian kernel odd in 3..13; motion length 0..12 at 0..90 degrees;
downsample then re-upscale with bilinear, bicubic or nearest; Gaussian, Poisson or
salt-and-pepper noise; JPEG quality 50..100. The noise, downsample, pose, occlusion and
exposure ranges are ours (the patent leaves them "random").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

GAUSSIAN_KERNEL_SIZES = (3, 5, 7, 9, 11, 13)
MOTION_LENGTH_RANGE = (0, 12)  # pixels
MOTION_ANGLE_RANGE = (0.0, 90.0)  # degrees
DOWNSAMPLE_FACTOR_RANGE = (1.0, 8.0)
UPSCALE_INTERPOLATIONS = {"bilinear": cv2.INTER_LINEAR, "bicubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}
GAUSSIAN_NOISE_MEAN_RANGE = (-5.0, 5.0)
GAUSSIAN_NOISE_SIGMA_RANGE = (0.0, 25.0)
POISSON_PEAK_RANGE = (8.0, 255.0)  # photons at white; fewer photons, more shot noise
SALT_PEPPER_AMOUNT_RANGE = (0.0, 0.05)  # fraction of pixels set to 0 or 255
JPEG_QUALITY_RANGE = (50, 100)
POSE_YAW_RANGE = (-35.0, 35.0)  # degrees, out-of-plane rotation of the face plane
POSE_PITCH_RANGE = (-25.0, 25.0)
POSE_ROLL_RANGE = (-20.0, 20.0)
OCCLUSION_AREA_RANGE = (0.02, 0.25)  # fraction of the image covered by one rectangle
EXPOSURE_GAIN_RANGE = (0.25, 2.5)  # sampled log-uniformly
EXPOSURE_GAMMA_RANGE = (0.6, 1.6)
LOW_RES_SCALES = (2, 4, 8)
NOISE_KINDS = ("gaussian", "poisson", "salt_pepper")


def _to_uint8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def gaussian_blur(image: np.ndarray, ksize: int) -> np.ndarray:
    if ksize not in GAUSSIAN_KERNEL_SIZES:
        raise ValueError(f"Gaussian kernel size must be one of {GAUSSIAN_KERNEL_SIZES}, got {ksize}")
    return cv2.GaussianBlur(image, (ksize, ksize), 0)


def motion_kernel(length: int, angle_deg: float) -> np.ndarray:
    """A normalised line PSF of `length` pixels at `angle_deg` (the restoration generator, formulas 7-8)."""
    size = max(1, int(length))
    if size == 1:
        return np.ones((1, 1), np.float32)
    kernel = np.zeros((size, size), np.float32)
    kernel[size // 2, :] = 1.0
    centre = ((size - 1) / 2.0, (size - 1) / 2.0)
    rotation = cv2.getRotationMatrix2D(centre, angle_deg, 1.0)
    kernel = cv2.warpAffine(kernel, rotation, (size, size), flags=cv2.INTER_LINEAR)
    return kernel / max(kernel.sum(), 1e-6)


def motion_blur(image: np.ndarray, length: int, angle_deg: float) -> np.ndarray:
    if not MOTION_LENGTH_RANGE[0] <= length <= MOTION_LENGTH_RANGE[1]:
        raise ValueError(f"motion length must be in {MOTION_LENGTH_RANGE}, got {length}")
    if length <= 1:
        return image.copy()
    return cv2.filter2D(image, -1, motion_kernel(length, angle_deg), borderType=cv2.BORDER_REFLECT)


def downsample(image: np.ndarray, factor: float) -> np.ndarray:
    """Shrink by `factor` with area averaging (what a sensor seeing a farther face does)."""
    height, width = image.shape[:2]
    size = (max(1, int(round(width / factor))), max(1, int(round(height / factor))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def resample(image: np.ndarray, factor: float, interpolation: str) -> np.ndarray:
    """Downsample by `factor`, then re-upscale to the original size (the restoration generator, steps 2-3)."""
    height, width = image.shape[:2]
    small = downsample(image, factor)
    return cv2.resize(small, (width, height), interpolation=UPSCALE_INTERPOLATIONS[interpolation])


def gaussian_noise(image: np.ndarray, mean: float, sigma: float, rng: np.random.Generator) -> np.ndarray:
    return _to_uint8(image.astype(np.float32) + rng.normal(mean, sigma, image.shape))


def poisson_noise(image: np.ndarray, peak: float, rng: np.random.Generator) -> np.ndarray:
    photons = image.astype(np.float64) / 255.0 * peak
    return _to_uint8(rng.poisson(photons) / peak * 255.0)


def salt_pepper_noise(image: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    noisy = image.copy()
    hit = rng.random(image.shape[:2]) < amount
    salt = rng.random(image.shape[:2]) < 0.5
    noisy[hit & salt] = 255
    noisy[hit & ~salt] = 0
    return noisy


def jpeg_compress(image: np.ndarray, quality: int) -> np.ndarray:
    ok, buffer = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)


def pose_homography(shape: tuple[int, ...], yaw_deg: float, pitch_deg: float, roll_deg: float,
                    centre: tuple[float, float] | None = None) -> np.ndarray:
    """Homography induced by rotating a fronto-parallel plane about its centre.

    H = K (R + (I - R) e3 e3^T) K^-1: points of the plane z = d rotated about (0, 0, d);
    focal length = the image diagonal (a normal lens).
    """
    height, width = shape[:2]
    cx, cy = centre if centre is not None else ((width - 1) / 2.0, (height - 1) / 2.0)
    focal = float(np.hypot(height, width))
    k = np.array([[focal, 0, cx], [0, focal, cy], [0, 0, 1]], np.float64)
    yaw, pitch, roll = np.radians([yaw_deg, pitch_deg, roll_deg])
    ry = np.array([[np.cos(yaw), 0, np.sin(yaw)], [0, 1, 0], [-np.sin(yaw), 0, np.cos(yaw)]])
    rx = np.array([[1, 0, 0], [0, np.cos(pitch), -np.sin(pitch)], [0, np.sin(pitch), np.cos(pitch)]])
    rz = np.array([[np.cos(roll), -np.sin(roll), 0], [np.sin(roll), np.cos(roll), 0], [0, 0, 1]])
    rotation = rz @ rx @ ry
    e3 = np.array([[0.0], [0.0], [1.0]])
    plane = rotation + (np.eye(3) - rotation) @ e3 @ e3.T
    return k @ plane @ np.linalg.inv(k)


def pose_warp(image: np.ndarray, yaw_deg: float, pitch_deg: float, roll_deg: float,
              centre: tuple[float, float] | None = None) -> np.ndarray:
    h = pose_homography(image.shape, yaw_deg, pitch_deg, roll_deg, centre)
    return cv2.warpPerspective(image, h, (image.shape[1], image.shape[0]), flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)


def occlude(image: np.ndarray, box: tuple[int, int, int, int], color: tuple[int, int, int]) -> np.ndarray:
    """Paint the rectangle (x, y, w, h) with one colour (a hand, a scarf, a sign)."""
    x, y, w, h = box
    out = image.copy()
    out[y:y + h, x:x + w] = np.asarray(color, np.uint8)
    return out


def exposure(image: np.ndarray, gain: float, gamma: float) -> np.ndarray:
    """Over/under-exposure: linear gain then gamma on [0, 1] intensities, clipped."""
    normalised = np.clip(image.astype(np.float32) / 255.0 * gain, 0.0, 1.0)
    return _to_uint8(normalised ** gamma * 255.0)


def _span(value: float, bounds: tuple[float, float]) -> float:
    return float(np.clip((value - bounds[0]) / (bounds[1] - bounds[0]), 0.0, 1.0))


def step_strength(name: str, params: dict) -> float:
    """How far into its range one applied degradation went, in [0, 1]."""
    if name == "gaussian_blur":
        return _span(params["ksize"], (1, GAUSSIAN_KERNEL_SIZES[-1]))
    if name == "motion_blur":
        return _span(params["length"], MOTION_LENGTH_RANGE)
    if name == "resample":
        return _span(np.log(params["factor"]), tuple(np.log(DOWNSAMPLE_FACTOR_RANGE)))
    if name == "noise":
        if params["kind"] == "gaussian":
            return _span(params["sigma"], GAUSSIAN_NOISE_SIGMA_RANGE)
        if params["kind"] == "poisson":  # fewer photons = stronger; log scale
            return 1.0 - _span(np.log(params["peak"]), tuple(np.log(POISSON_PEAK_RANGE)))
        return _span(params["amount"], SALT_PEPPER_AMOUNT_RANGE)
    if name == "jpeg":
        return 1.0 - _span(params["quality"], JPEG_QUALITY_RANGE)
    if name == "pose":
        return max(abs(params["yaw"]) / POSE_YAW_RANGE[1], abs(params["pitch"]) / POSE_PITCH_RANGE[1])
    if name == "occlusion":
        return _span(params["area"], (0.0, OCCLUSION_AREA_RANGE[1]))
    if name == "exposure":
        extreme = max(np.log(EXPOSURE_GAIN_RANGE[1]), -np.log(EXPOSURE_GAIN_RANGE[0]))
        return float(min(1.0, abs(np.log(params["gain"])) / extreme))
    raise KeyError(name)


def combined_strength(params: dict) -> float:
    """1 - prod(1 - s_i): any one strong degradation makes the whole sample strong."""
    keep = 1.0
    for name, step in params.items():
        if name in STEP_ORDER:
            keep *= 1.0 - step_strength(name, step)
    return float(1.0 - keep)


STEP_ORDER = ("pose", "occlusion", "exposure", "gaussian_blur", "motion_blur", "resample", "noise", "jpeg")


@dataclass
class Degraded:
    image: np.ndarray
    params: dict
    strength: float


@dataclass
class Degradation:
    """Random recipe: each step is applied with its probability, parameters drawn from `rng`.

    `severity` in (0, 1] shrinks every continuous range towards its mild end, so one recipe
    can make gentle or harsh data.
    """

    probabilities: dict[str, float] = field(default_factory=lambda: {
        "pose": 0.3, "occlusion": 0.15, "exposure": 0.3, "gaussian_blur": 0.4, "motion_blur": 0.3,
        "resample": 0.6, "noise": 0.5, "jpeg": 0.6,
    })
    severity: float = 1.0

    def __post_init__(self):
        unknown = set(self.probabilities) - set(STEP_ORDER)
        if unknown:
            raise ValueError(f"unknown degradation steps {sorted(unknown)}; known: {STEP_ORDER}")
        if not 0.0 < self.severity <= 1.0:
            raise ValueError(f"severity must be in (0, 1], got {self.severity}")

    def _scaled(self, bounds: tuple[float, float], mild: float) -> tuple[float, float]:
        """The range from its mild end `mild` to `severity` of the way to its strong end."""
        far = bounds[1] if mild == bounds[0] else bounds[0]
        return (mild, mild + (far - mild) * self.severity)

    def sample_step(self, name: str, shape: tuple[int, ...], rng: np.random.Generator) -> dict:
        s = self.severity
        if name == "pose":
            return {"yaw": float(rng.uniform(*POSE_YAW_RANGE) * s), "pitch": float(rng.uniform(*POSE_PITCH_RANGE) * s),
                    "roll": float(rng.uniform(*POSE_ROLL_RANGE) * s)}
        if name == "occlusion":
            height, width = shape[:2]
            area = float(rng.uniform(*self._scaled(OCCLUSION_AREA_RANGE, OCCLUSION_AREA_RANGE[0])))
            aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
            w = int(np.clip(round(np.sqrt(area * height * width * aspect)), 1, width))
            h = int(np.clip(round(area * height * width / w), 1, height))
            x, y = int(rng.integers(0, width - w + 1)), int(rng.integers(0, height - h + 1))
            color = [int(c) for c in rng.integers(0, 256, 3)]
            return {"box": [x, y, w, h], "color": color, "area": w * h / float(height * width)}
        if name == "exposure":
            log_gain = rng.uniform(np.log(EXPOSURE_GAIN_RANGE[0]), np.log(EXPOSURE_GAIN_RANGE[1])) * s
            return {"gain": float(np.exp(log_gain)),
                    "gamma": float(np.exp(rng.uniform(*np.log(EXPOSURE_GAMMA_RANGE)) * s))}
        if name == "gaussian_blur":
            top = max(1, int(np.ceil(len(GAUSSIAN_KERNEL_SIZES) * s)))
            return {"ksize": int(rng.choice(GAUSSIAN_KERNEL_SIZES[:top]))}
        if name == "motion_blur":
            high = int(round(MOTION_LENGTH_RANGE[1] * s))
            return {"length": int(rng.integers(MOTION_LENGTH_RANGE[0], high + 1)),
                    "angle": float(rng.uniform(*MOTION_ANGLE_RANGE))}
        if name == "resample":
            low, high = np.log(DOWNSAMPLE_FACTOR_RANGE)
            return {"factor": float(np.exp(rng.uniform(low, low + (high - low) * s))),
                    "interpolation": str(rng.choice(list(UPSCALE_INTERPOLATIONS)))}
        if name == "noise":
            kind = str(rng.choice(NOISE_KINDS))
            if kind == "gaussian":
                return {"kind": kind, "mean": float(rng.uniform(*GAUSSIAN_NOISE_MEAN_RANGE)),
                        "sigma": float(rng.uniform(*self._scaled(GAUSSIAN_NOISE_SIGMA_RANGE, 0.0)))}
            if kind == "poisson":
                low, high = np.log(POISSON_PEAK_RANGE)
                return {"kind": kind, "peak": float(np.exp(rng.uniform(high - (high - low) * s, high)))}
            return {"kind": kind, "amount": float(rng.uniform(*self._scaled(SALT_PEPPER_AMOUNT_RANGE, 0.0)))}
        if name == "jpeg":
            low = int(round(JPEG_QUALITY_RANGE[1] - (JPEG_QUALITY_RANGE[1] - JPEG_QUALITY_RANGE[0]) * s))
            return {"quality": int(rng.integers(low, JPEG_QUALITY_RANGE[1] + 1))}
        raise KeyError(name)

    def sample(self, shape: tuple[int, ...], rng: np.random.Generator) -> dict:
        params = {}
        for name in STEP_ORDER:
            if rng.random() < self.probabilities.get(name, 0.0):
                params[name] = self.sample_step(name, shape, rng)
        # Noise draws its own per-pixel values; seeding it from the recipe keeps a replay exact.
        params["noise_seed"] = int(rng.integers(0, 2**31 - 1))
        return params

    @staticmethod
    def apply(image: np.ndarray, params: dict, centre: tuple[float, float] | None = None) -> np.ndarray:
        """Apply sampled `params` in STEP_ORDER; `centre` is the pose-warp pivot (the face)."""
        noise_rng = np.random.default_rng(params.get("noise_seed", 0))
        out = image
        for name in STEP_ORDER:
            if name not in params:
                continue
            p = params[name]
            if name == "pose":
                out = pose_warp(out, p["yaw"], p["pitch"], p["roll"], centre)
            elif name == "occlusion":
                out = occlude(out, tuple(p["box"]), tuple(p["color"]))
            elif name == "exposure":
                out = exposure(out, p["gain"], p["gamma"])
            elif name == "gaussian_blur":
                out = gaussian_blur(out, p["ksize"])
            elif name == "motion_blur":
                out = motion_blur(out, p["length"], p["angle"])
            elif name == "resample":
                out = resample(out, p["factor"], p["interpolation"])
            elif name == "noise":
                if p["kind"] == "gaussian":
                    out = gaussian_noise(out, p["mean"], p["sigma"], noise_rng)
                elif p["kind"] == "poisson":
                    out = poisson_noise(out, p["peak"], noise_rng)
                else:
                    out = salt_pepper_noise(out, p["amount"], noise_rng)
            elif name == "jpeg":
                out = jpeg_compress(out, p["quality"])
        return out.copy() if out is image else out

    def __call__(self, image: np.ndarray, rng: np.random.Generator,
                 centre: tuple[float, float] | None = None) -> Degraded:
        params = self.sample(image.shape, rng)
        return Degraded(self.apply(image, params, centre), params, combined_strength(params))

    def low_res(self, image: np.ndarray, scale: int, rng: np.random.Generator) -> Degraded:
        """Super-resolution input: degrade at full size without re-upscaling, shrink exactly by `scale`,
        then add sensor noise and JPEG at the low resolution (where a camera adds them).

        The returned image is (H // scale, W // scale); crop H and W to multiples of `scale` first.
        """
        if scale not in LOW_RES_SCALES:
            raise ValueError(f"scale must be one of {LOW_RES_SCALES}, got {scale}")
        height, width = image.shape[:2]
        if height % scale or width % scale:
            raise ValueError(f"image {width}x{height} is not a multiple of scale {scale}")
        params = self.sample(image.shape, rng)
        params.pop("resample", None)
        optics = {k: v for k, v in params.items() if k not in ("noise", "jpeg")}
        blurred = self.apply(image, optics)
        small = cv2.resize(blurred, (width // scale, height // scale), interpolation=cv2.INTER_AREA)
        sensor = {k: v for k, v in params.items() if k in ("noise", "jpeg", "noise_seed")}
        low = self.apply(small, sensor)
        params["scale"] = scale
        strength = 1.0 - (1.0 - combined_strength(params)) * (1.0 - np.log2(scale) / np.log2(LOW_RES_SCALES[-1]))
        return Degraded(low, params, float(strength))
