<?php
/**
 * Doubles of WC_Product and WC_Product_Variation (the getters the plugin calls).
 *
 * @package TAP_Order_Logger\Tests
 */

class WC_Product extends WC_Data {

	/** @var array */
	protected $props;

	/**
	 * @param array $props id, name, sku, category_ids, parent_id, price.
	 */
	public function __construct( array $props = array() ) {
		$this->props = array_merge(
			array( 'id' => 0, 'name' => '', 'sku' => '', 'category_ids' => array(), 'parent_id' => 0, 'price' => '' ),
			$props
		);
		$this->id = (int) $this->props['id'];
	}

	/** @return string */
	public function get_name( $context = 'view' ) {
		return (string) $this->props['name'];
	}

	/** @return string */
	public function get_sku( $context = 'view' ) {
		return (string) $this->props['sku'];
	}

	/** @return int[] */
	public function get_category_ids( $context = 'view' ) {
		return array_map( 'intval', $this->props['category_ids'] );
	}

	/** @return int */
	public function get_parent_id( $context = 'view' ) {
		return (int) $this->props['parent_id'];
	}

	/** @return string */
	public function get_price( $context = 'view' ) {
		return (string) $this->props['price'];
	}

	/** @return int */
	public function save() {
		TAP_Test_Store::$products[ $this->id ] = $this;
		return $this->id;
	}
}

class WC_Product_Simple extends WC_Product {}

/** Variations keep no categories of their own in this double, like in WooCommerce. */
class WC_Product_Variation extends WC_Product {}
