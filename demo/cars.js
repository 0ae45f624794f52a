// The demo shop's stock: brands, cars and the drawings of their shapes, for the car finder.
// A plain script loaded before finder/finder.js (not a fetch), so that the finder renders its
// first view, schema.org JSON-LD included, while the page is parsed: the Lookout snippet reads
// the JSON-LD of the page that loads it once the HTML is parsed (DOMContentLoaded).
window.northgateStock = {
 "brands": [
  {
   "slug": "tesla",
   "name": "Tesla"
  },
  {
   "slug": "bmw",
   "name": "BMW"
  },
  {
   "slug": "toyota",
   "name": "Toyota"
  }
 ],
 "cars": [
  {
   "slug": "tesla-model-3",
   "brand": "tesla",
   "brand_name": "Tesla",
   "name": "Tesla Model 3",
   "model": "Model 3",
   "trim": "Long Range AWD",
   "year": 2024,
   "price": 42490,
   "sku": "TES-M3-2024",
   "body": "Sedan",
   "fuel": "Electric",
   "shape": "sedan",
   "paint": "red",
   "range": "341 mi",
   "power": "394 hp",
   "accel": "4.2 s",
   "seats": 5,
   "blurb": "The best-selling electric sedan: quiet, quick and efficient, with a minimalist cabin and a 15.4-inch touchscreen.",
   "url": "/demo/cars/tesla-model-3.html"
  },
  {
   "slug": "tesla-model-y",
   "brand": "tesla",
   "brand_name": "Tesla",
   "name": "Tesla Model Y",
   "model": "Model Y",
   "trim": "Long Range AWD",
   "year": 2024,
   "price": 47490,
   "sku": "TES-MY-2024",
   "body": "SUV",
   "fuel": "Electric",
   "shape": "suv",
   "paint": "white",
   "range": "310 mi",
   "power": "384 hp",
   "accel": "4.8 s",
   "seats": 5,
   "blurb": "A compact electric SUV with room for five, a huge cargo area and access to the Supercharger network.",
   "url": "/demo/cars/tesla-model-y.html"
  },
  {
   "slug": "tesla-model-s",
   "brand": "tesla",
   "brand_name": "Tesla",
   "name": "Tesla Model S",
   "model": "Model S",
   "trim": "Dual Motor",
   "year": 2023,
   "price": 74990,
   "sku": "TES-MS-2023",
   "body": "Sedan",
   "fuel": "Electric",
   "shape": "sedan",
   "paint": "black",
   "range": "402 mi",
   "power": "670 hp",
   "accel": "3.1 s",
   "seats": 5,
   "blurb": "The long-range flagship sedan with a yoke option, tri-zone climate and a cinema-grade display.",
   "url": "/demo/cars/tesla-model-s.html"
  },
  {
   "slug": "bmw-i4",
   "brand": "bmw",
   "brand_name": "BMW",
   "name": "BMW i4",
   "model": "i4",
   "trim": "eDrive40 Gran Coupe",
   "year": 2024,
   "price": 57900,
   "sku": "BMW-I4-2024",
   "body": "Sedan",
   "fuel": "Electric",
   "shape": "sedan",
   "paint": "blue",
   "range": "307 mi",
   "power": "335 hp",
   "accel": "5.5 s",
   "seats": 5,
   "blurb": "An electric gran coupé that drives like a BMW should, with a curved display and a practical hatch.",
   "url": "/demo/cars/bmw-i4.html"
  },
  {
   "slug": "bmw-330i",
   "brand": "bmw",
   "brand_name": "BMW",
   "name": "BMW 330i",
   "model": "330i",
   "trim": "M Sport",
   "year": 2024,
   "price": 46200,
   "sku": "BMW-330-2024",
   "body": "Sedan",
   "fuel": "Petrol",
   "shape": "sedan",
   "paint": "grey",
   "range": "460 mi",
   "power": "255 hp",
   "accel": "5.6 s",
   "seats": 5,
   "blurb": "The benchmark sports sedan: balanced, precise and comfortable on a long drive.",
   "url": "/demo/cars/bmw-330i.html"
  },
  {
   "slug": "bmw-x5",
   "brand": "bmw",
   "brand_name": "BMW",
   "name": "BMW X5",
   "model": "X5",
   "trim": "xDrive40i",
   "year": 2023,
   "price": 65200,
   "sku": "BMW-X5-2023",
   "body": "SUV",
   "fuel": "Mild hybrid",
   "shape": "suv",
   "paint": "black",
   "range": "500 mi",
   "power": "375 hp",
   "accel": "5.3 s",
   "seats": 5,
   "blurb": "A spacious sports activity vehicle with all-wheel drive and a refined, quiet cabin.",
   "url": "/demo/cars/bmw-x5.html"
  },
  {
   "slug": "toyota-corolla",
   "brand": "toyota",
   "brand_name": "Toyota",
   "name": "Toyota Corolla",
   "model": "Corolla",
   "trim": "Hybrid LE",
   "year": 2024,
   "price": 23500,
   "sku": "TOY-COR-2024",
   "body": "Sedan",
   "fuel": "Hybrid",
   "shape": "sedan",
   "paint": "silver",
   "range": "590 mi",
   "power": "138 hp",
   "accel": "9.2 s",
   "seats": 5,
   "blurb": "Frugal, dependable and easy to live with: the world's best-selling car, now as a 50 mpg hybrid.",
   "url": "/demo/cars/toyota-corolla.html"
  },
  {
   "slug": "toyota-rav4",
   "brand": "toyota",
   "brand_name": "Toyota",
   "name": "Toyota RAV4",
   "model": "RAV4",
   "trim": "Hybrid XLE",
   "year": 2024,
   "price": 34350,
   "sku": "TOY-RAV4-2024",
   "body": "SUV",
   "fuel": "Hybrid",
   "shape": "suv",
   "paint": "green",
   "range": "580 mi",
   "power": "219 hp",
   "accel": "7.8 s",
   "seats": 5,
   "blurb": "The do-it-all hybrid SUV with standard all-wheel drive and room for the weekend's gear.",
   "url": "/demo/cars/toyota-rav4.html"
  },
  {
   "slug": "toyota-camry",
   "brand": "toyota",
   "brand_name": "Toyota",
   "name": "Toyota Camry",
   "model": "Camry",
   "trim": "SE Hybrid",
   "year": 2025,
   "price": 31300,
   "sku": "TOY-CAM-2025",
   "body": "Sedan",
   "fuel": "Hybrid",
   "shape": "sedan",
   "paint": "white",
   "range": "620 mi",
   "power": "225 hp",
   "accel": "7.2 s",
   "seats": 5,
   "blurb": "The all-new Camry is hybrid-only: smooth, roomy and remarkably efficient.",
   "url": "/demo/cars/toyota-camry.html"
  }
 ],
 "shapes": {
  "sedan": {
   "body": "M16 96C14 82 20 72 36 68L92 60C112 42 138 32 172 32C204 32 226 42 250 58L288 64C302 67 308 76 307 90L305 98H272A28 28 0 0 0 216 98H104A28 28 0 0 0 48 98H20Z",
   "shade": "M18 86H306L305 98H272A28 28 0 0 0 216 98H104A28 28 0 0 0 48 98H20Z",
   "glass": [
    "M104 60C120 46 142 38 168 38L170 60Z",
    "M178 38C202 39 220 46 238 60H178Z"
   ],
   "wheels": [
    [
     76,
     22
    ],
    [
     244,
     22
    ]
   ],
   "light": [
    296,
    74
   ]
  },
  "suv": {
   "body": "M14 96C12 80 18 68 32 64L78 58C92 36 106 26 140 26H226C244 26 256 36 268 54L292 60C304 63 309 72 308 88L306 98H274A30 30 0 0 0 214 98H106A30 30 0 0 0 46 98H18Z",
   "shade": "M16 84H308L306 98H274A30 30 0 0 0 214 98H106A30 30 0 0 0 46 98H18Z",
   "glass": [
    "M92 58C102 40 112 33 136 33H168V58Z",
    "M176 33H222C236 33 246 42 254 58H176Z"
   ],
   "wheels": [
    [
     76,
     24
    ],
    [
     244,
     24
    ]
   ],
   "light": [
    297,
    70
   ]
  }
 }
};
