# As coco_gpt.py, with a local Hugging Face instruct model for CNA and layouts (no API), e.g.
#   huggingface-cli download Qwen/Qwen2.5-7B-Instruct --local-dir checkpoints/qwen2.5-7b-instruct
_base_ = ['./coco_gpt.py']
work_dir = 'work_dirs/nss/coco_local_llm'
llm = dict(_delete_=True, type='TransformersLocalLLM', model_path='checkpoints/qwen2.5-7b-instruct',
           device='auto', torch_dtype='bfloat16', max_new_tokens=1536, temperature=0.7, top_p=0.95)
cna = dict(llm=dict(_delete_=True, type='TransformersLocalLLM', model_path='checkpoints/qwen2.5-7b-instruct',
                    device='auto', torch_dtype='bfloat16', max_new_tokens=512, temperature=0.7))
