# DreamMask NSS on COCO with real models (the public scripts' setup, see docs/nss.md):
#   CNA: gpt-4.1-mini, n_repeat=5, top_k=30, keep names seen >= 2 times that are not COCO names/synonyms
#   layouts: an LLM (gpt-5.1 in the public script) draws HTML layouts for 5-8 categories on a 1024 canvas
#   layout-to-image: GLIGEN (diffusers) from a local folder, on GPU
#   masks: SAM ViT-H box prompt (multimask, best score) + CLIP ViT-B/32 crop-vs-name cosine;
#          keep clip_score >= 0.25 and mask_uncertainty = 1 - SAM score <= 0.30
# The API key is read from $OPENAI_API_KEY only; it is never written to the work dir or logs.
#   export OPENAI_API_KEY=...   (any OpenAI-compatible server works: set endpoint, api_key_env=None if local)
#   python tools/nss/run.py configs/nss/coco_gpt.py --work-dir work_dirs/nss/coco_gpt
seed = 0
work_dir = 'work_dirs/nss/coco_gpt'
num_scenes = 1000
canvas = dict(width=1024, height=1024)
show_progress = True

base_vocabulary = dict(source='coco')  # COCO's 80 thing names (+ ovseg synonyms); or a .txt/.json path

llm = dict(type='OpenAICompatibleLLM', endpoint='https://api.openai.com/v1', model='gpt-5.1',
           api_key_env='OPENAI_API_KEY', temperature=0.7, connect_timeout=10.0, read_timeout=180.0,
           max_retries=4, backoff=2.0, backoff_factor=2.0, max_backoff=60.0)

cna = dict(n_repeat=5, top_k=30, min_count=2, max_attempts=3, llm=dict(llm, model='gpt-4.1-mini',
                                                                       read_timeout=120.0))

layout = dict(
    min_categories=5,
    max_categories=8,
    min_novel=1,
    cooccurrence=dict(),
    palette_seed=0,
    generator=dict(
        type='LLMLayoutGenerator',
        llm=None,  # None = the top-level `llm`
        max_attempts=3,
        tolerance=8,
        min_size=8,
        max_objects=32))

render = dict(renderer=dict(type='GLIGENRenderer', model_dir='checkpoints/gligen-1-4-generation-text-box',
                            device='cuda', dtype='float16', num_inference_steps=50, guidance_scale=7.5,
                            scheduled_sampling_beta=1.0, height=512, width=512, batch_size=4),
              resize_to_canvas=True)  # GLIGEN's 512 px output is resized to the 1024 canvas the boxes live in

masks = dict(
    scorer=dict(
        type='SamClipScorer', device='cuda', box_batch_size=64, clip_batch_size=64,
        sam=dict(model_type='vit_h', checkpoint='checkpoints/sam_vit_h_4b8939.pth'),
        # OpenAI ViT-B/32 (mask_and_selection.py) was trained with QuickGELU; also right for a local OpenAI file
        clip=dict(model='ViT-B-32', pretrained='openai', cache_dir='checkpoints/open_clip', prompt='{}',
                  force_quick_gelu=True)),
    clip_threshold=0.25, max_uncertainty=0.30, min_mask_area=1, keep_empty_scenes=False)
