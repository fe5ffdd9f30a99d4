<?php
/**
 * Doubles of WC_Data (meta data and save(); get_meta() returns '' for a missing key, as
 * WooCommerce does for a single value) and WC_Meta_Data (what get_meta_data() lists: key and
 * value through __get() and get_data()).
 *
 * @package TAP_Order_Logger\Tests
 */

abstract class WC_Data {

	/** @var int */
	protected $id = 0;

	/** @var array<string, mixed> */
	protected $meta = array();

	/** @return int */
	public function get_id() {
		return $this->id;
	}

	/**
	 * @param string $key     Meta key.
	 * @param bool   $single  Single value.
	 * @param string $context view or edit.
	 * @return mixed
	 */
	public function get_meta( $key = '', $single = true, $context = 'view' ) {
		return array_key_exists( $key, $this->meta ) ? $this->meta[ $key ] : ( $single ? '' : array() );
	}

	/**
	 * @param string $key   Meta key.
	 * @param mixed  $value Value.
	 */
	public function update_meta_data( $key, $value ) {
		$this->meta[ $key ] = $value;
	}

	/** @return WC_Meta_Data[] every meta entry, as WC_Data::get_meta_data() lists them */
	public function get_meta_data() {
		$list = array();
		foreach ( $this->meta as $key => $value ) {
			$list[] = new WC_Meta_Data( array( 'id' => count( $list ) + 1, 'key' => $key, 'value' => $value ) );
		}
		return $list;
	}

	/** @param string $key Meta key. */
	public function delete_meta_data( $key ) {
		unset( $this->meta[ $key ] );
	}

	/** @return int The id. */
	abstract public function save();
}

final class WC_Meta_Data {

	/** @var array{id: int, key: string, value: mixed} */
	private $data;

	public function __construct( array $meta = array() ) {
		$this->data = $meta + array( 'id' => 0, 'key' => '', 'value' => null );
	}

	public function __isset( $name ) {
		return array_key_exists( $name, $this->data );
	}

	public function __get( $name ) {
		return $this->data[ $name ] ?? null;
	}

	/** @return array{id: int, key: string, value: mixed} */
	public function get_data() {
		return $this->data;
	}
}
