"""GLIGEN (box-grounded Stable Diffusion) through diffusers, loaded from a local directory."""
from __future__ import annotations

from pathlib import Path

from ..errors import MissingModelError, require_path
from ..registry import RENDERERS
from .base import LayoutToImage, RenderError, to_rgb

HOW_TO_GET = ('Download a diffusers GLIGEN checkpoint once on a machine with internet, e.g. '
              '`huggingface-cli download masterful/gligen-1-4-generation-text-box --local-dir <dir>`, '
              'and set render.model_dir to <dir>.')


@RENDERERS.register_module()
class GLIGENRenderer(LayoutToImage):
    """Args:
        model_dir: diffusers pipeline folder (``model_index.json``, ``unet/``, ``vae/``, ``text_encoder/``
            ...).
        device: ``'cuda'`` (default) or ``'cpu'``; dtype ``'float16'`` on GPU.
        height, width: generation size (SD-1.x GLIGEN: 512); the pipeline resizes to the layout canvas.
        prompt_template: caption built from the layout's names (``{names}`` = comma-separated unique names).
        batch_size: scenes per ``render_batch`` call. diffusers' GLIGEN pipeline grounds one phrase/box set
            per call, so a batch runs one pipeline call per scene, with ``images_per_scene`` images each
            (extra images are candidates: the first one is used).
        scheduled_sampling_beta: fraction of denoising steps with grounding (GLIGEN paper's beta).
    """

    def __init__(self, model_dir: str, device: str = 'cuda', dtype: str = 'float16',
                 num_inference_steps: int = 50, guidance_scale: float = 7.5,
                 scheduled_sampling_beta: float = 1.0, height: int = 512, width: int = 512,
                 batch_size: int = 4, images_per_scene: int = 1,
                 prompt_template: str = 'a realistic photo of {names}, high quality, detailed',
                 negative_prompt: str = 'low quality, blurry, cartoon, text, watermark', max_objs: int = 30,
                 enable_attention_slicing: bool = False):
        p = require_path(model_dir, 'GLIGEN diffusers model directory', HOW_TO_GET, is_dir=True)
        if not (Path(p) / 'model_index.json').is_file():
            raise MissingModelError('GLIGEN model_index.json', Path(p) / 'model_index.json', HOW_TO_GET)
        import torch
        from diffusers import StableDiffusionGLIGENPipeline
        self.device = device
        torch_dtype = getattr(torch, dtype) if device != 'cpu' else torch.float32
        self.pipe = StableDiffusionGLIGENPipeline.from_pretrained(str(p), torch_dtype=torch_dtype,
                                                                  local_files_only=True)
        if hasattr(self.pipe, 'safety_checker') and self.pipe.safety_checker is not None:
            self.pipe.safety_checker = None  # layouts are benign; avoids black images on false positives
        self.pipe.to(device)
        self.pipe.set_progress_bar_config(disable=True)
        if enable_attention_slicing:
            self.pipe.enable_attention_slicing()
        self.model_dir = str(p)
        self.kw = dict(num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                       gligen_scheduled_sampling_beta=scheduled_sampling_beta, height=height, width=width)
        self.batch_size = batch_size
        self.images_per_scene = images_per_scene
        self.prompt_template = prompt_template
        self.negative_prompt = negative_prompt
        self.max_objs = max_objs

    def describe(self):
        return {'type': type(self).__name__, 'model_dir': self.model_dir, **self.kw}

    def grounding(self, layout):
        """(prompt, phrases, boxes in [0, 1] xyxy) for one layout."""
        objs = layout.objects[:self.max_objs]
        W, H = layout.canvas_width, layout.canvas_height
        phrases = [o.name for o in objs]
        boxes = [[o.x / W, o.y / H, (o.x + o.w) / W, (o.y + o.h) / H] for o in objs]
        names = ', '.join(dict.fromkeys(phrases))
        return self.prompt_template.format(names=names), phrases, boxes

    def render_batch(self, layouts, seeds):
        import torch
        out = []
        for layout, seed in zip(layouts, seeds):
            prompt, phrases, boxes = self.grounding(layout)
            gen_device = self.device if str(self.device).startswith('cuda') else 'cpu'
            g = torch.Generator(gen_device).manual_seed(int(seed))
            try:
                res = self.pipe(prompt=prompt, gligen_phrases=phrases, gligen_boxes=boxes,
                                negative_prompt=self.negative_prompt,
                                num_images_per_prompt=self.images_per_scene, generator=g, output_type='pil',
                                **self.kw)
                out.append(to_rgb(res.images[0]))
            except torch.cuda.OutOfMemoryError as e:  # pragma: no cover - GPU only
                torch.cuda.empty_cache()
                out.append(RenderError('render_oom', str(e)[:200]))
            except Exception as e:  # one failing scene never stops the run
                out.append(RenderError('render_error', f'{type(e).__name__}: {e}'[:300]))
        return out
